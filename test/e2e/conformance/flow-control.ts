/**
 * Flow control and size limits in both directions: the client's Receive Maximum and Maximum
 * Packet Size are respected by the broker; the broker's (announced in CONNACK) are enforced with
 * DISCONNECT 0x93 and 0x95.
 */
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { eventually, settle } from '../../support/clients';
import {
  clientsFor,
  disconnect,
  expectClosedBy,
  LIMITS,
  payloads,
  publishes,
  publishesArrived,
  unique,
  VERSIONS,
  versionName,
  type Doors,
} from './support';

export function describeFlowControl(doors: Doors): void {
  const clients = clientsFor(doors);

  describe(`${doors.main.name}, MQTT 5.0: the client's Receive Maximum`, () => {
    it('[MQTT-3.3.4-9] [MQTT-4.9.0-2] never more unacknowledged QoS 1 PUBLISHes than the client\'s Receive Maximum; the rest follow in order as it acknowledges', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('recvmax');
      const { raw } = await c.rawConnected(5, { properties: { receiveMaximum: 2 } });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
      await raw.next('suback');
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      const sent = Array.from({ length: 6 }, (_, i) => `m${i}`);
      for (const payload of sent) await pub.publishAsync(topic, payload, { qos: 1 });

      const acked = new Set<number>();
      const unacknowledged = (): IPublishPacket[] => publishes(raw).filter((p) => !acked.has(p.messageId!));
      await publishesArrived(raw, 2);
      while (acked.size < sent.length) {
        await settle(150);
        expect(unacknowledged().length).toBeLessThanOrEqual(2);
        const [oldest] = unacknowledged();
        if (!oldest) {
          await eventually(() => unacknowledged().length > 0, 'the next PUBLISH after a PUBACK');
          continue;
        }
        acked.add(oldest.messageId!);
        raw.send({ cmd: 'puback', messageId: oldest.messageId! });
      }
      expect(payloads(publishes(raw))).toEqual(sent);
    });

    it('(MQTT 5.0 4.9) a QoS 2 delivery holds its place until PUBCOMP, not PUBREC', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('recvmax2');
      const { raw } = await c.rawConnected(5, { properties: { receiveMaximum: 1 } });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
      await raw.next('suback');
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(topic, 'first', { qos: 2 });
      await pub.publishAsync(topic, 'second', { qos: 2 });
      const [first] = await publishesArrived(raw, 1);
      raw.send({ cmd: 'pubrec', messageId: first!.messageId! });
      await raw.next('pubrel');
      await settle(400);
      expect(publishes(raw)).toHaveLength(1);
      raw.send({ cmd: 'pubcomp', messageId: first!.messageId! });
      const both = await publishesArrived(raw, 2);
      expect(payloads(both)).toEqual(['first', 'second']);
    });

    it('[MQTT-3.3.4-9] MQTT.js with Receive Maximum 1 receives every message, in order', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('recvmax-mqttjs');
      const sub = await c.mqtt({ protocolVersion: 5, properties: { receiveMaximum: 1 } });
      await sub.client.subscribeAsync(topic, { qos: 1 });
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      const sent = Array.from({ length: 10 }, (_, i) => `m${i}`);
      await Promise.all(sent.map((payload) => pub.publishAsync(topic, payload, { qos: 1 })));
      await eventually(() => sub.messages.length === sent.length, 'every message');
      expect(payloads(sub.messages)).toEqual(sent);
    });
  });

  describe(`${doors.limits.name}, MQTT 5.0: the broker's Receive Maximum`, () => {
    it(`(MQTT 5.0 3.2.2.3.3) CONNACK announces Receive Maximum ${LIMITS.receiveMaximum}; [MQTT-3.3.4-7] a client with more unacknowledged QoS 2 PUBLISHes gets DISCONNECT 0x93`, async (ctx) => {
      const c = clients(ctx);
      const topic = unique('broker-recvmax');
      const { raw, connack } = await c.rawConnected(5, {}, doors.limits);
      expect(connack.properties?.receiveMaximum).toBe(LIMITS.receiveMaximum);
      const qos2 = (messageId: number): IPublishPacket => ({ cmd: 'publish', topic, payload: Buffer.from(`p${messageId}`), qos: 2, messageId, dup: false, retain: false });
      raw.send(qos2(1));
      await raw.next('pubrec');
      raw.send(qos2(2));
      await raw.next('pubrec');
      // two unreleased: at the limit; releasing one makes room for another
      raw.send({ cmd: 'pubrel', messageId: 1 });
      await raw.next('pubcomp');
      raw.send(qos2(3));
      await raw.next('pubrec');
      expect(raw.closed).toBe(false);
      raw.send(qos2(4));
      await expectClosedBy(raw, 5, 0x93);
    });
  });

  for (const version of VERSIONS) {
    describe(`${doors.limits.name}, ${versionName(version)}: the broker's Maximum Packet Size`, () => {
      it(
        version === 5
          ? `[MQTT-3.2.2-15] (MQTT 5.0 3.2.2.3.6) CONNACK announces Maximum Packet Size ${LIMITS.maximumPacketSize}; a larger packet gets DISCONNECT 0x95`
          : `a packet larger than the broker's maximum (${LIMITS.maximumPacketSize} bytes; 3.1.1 has no Maximum Packet Size to announce) closes the connection`,
        async (ctx) => {
          const c = clients(ctx);
          const topic = unique('too-large');
          // Within the door's maximum keep-alive, which holds 3.1.1 clients too.
          const sub = await c.mqtt({ protocolVersion: version, keepalive: LIMITS.keepAlive }, doors.limits);
          await sub.client.subscribeAsync(topic, { qos: 1 });
          const { raw, connack } = await c.rawConnected(version, {}, doors.limits);
          if (version === 5) expect(connack.properties?.maximumPacketSize).toBe(LIMITS.maximumPacketSize);
          const publish = (size: number): IPublishPacket => ({ cmd: 'publish', topic, payload: Buffer.alloc(size, 120), qos: 1, messageId: size % 60_000 || 1, dup: false, retain: false });
          // just within the limit: delivered
          raw.send(publish(LIMITS.maximumPacketSize - topic.length - 20));
          await raw.next('puback');
          raw.send(publish(LIMITS.maximumPacketSize + 100));
          await expectClosedBy(raw, version, 0x95);
          await eventually(() => sub.messages.length >= 1, 'the message within the limit');
          await settle(200);
          expect(sub.messages).toHaveLength(1);
        },
      );
    });
  }

  describe(`${doors.main.name}, MQTT 5.0: the client's Maximum Packet Size`, () => {
    it('[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message larger than a subscriber\'s Maximum Packet Size is skipped for it, at every QoS, and others still get it', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('client-max');
      const clientId = unique('client-max');
      const connect = { clientId, clean: false, properties: { sessionExpiryInterval: 60, maximumPacketSize: 256 } };
      const { raw: small } = await c.rawConnected(5, connect);
      small.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
      await small.next('suback');
      const big = await c.mqtt({ protocolVersion: 5 });
      await big.client.subscribeAsync(topic, { qos: 2 });
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      const large = 'x'.repeat(1_000);
      for (const qos of [0, 1, 2] as const) {
        await pub.publishAsync(topic, large, { qos });
        await pub.publishAsync(topic, `fits ${qos}`, { qos });
      }
      await eventually(() => big.messages.length === 6, 'all six on the subscriber without a limit');
      await publishesArrived(small, 3);
      await settle(300);
      expect(payloads(publishes(small))).toEqual(['fits 0', 'fits 1', 'fits 2']);
    });

    it('[MQTT-3.1.2-24] a queued message larger than the Maximum Packet Size of the connection that resumes the session is not sent', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('queued-max');
      const clientId = unique('queued-max');
      const { raw: before } = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      before.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
      await before.next('suback');
      await disconnect(before);
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(topic, 'x'.repeat(1_000), { qos: 1 });
      await pub.publishAsync(topic, 'fits', { qos: 1 });

      const { raw: after } = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60, maximumPacketSize: 256 } });
      await publishesArrived(after, 1);
      await settle(300);
      expect(payloads(publishes(after))).toEqual(['fits']);
    });
  });
}
