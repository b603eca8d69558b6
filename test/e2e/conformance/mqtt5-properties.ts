/**
 * MQTT 5.0 reason codes on acknowledgements, message properties passed through untouched,
 * Message Expiry Interval, Request Response Information and the Assigned Client Identifier.
 */
import type { IPubackPacket, IPubrecPacket, ISubackPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { eventually, settle } from '../../support/clients';
import { acknowledge, clientsFor, disconnect, expectClosedBy, payloads, publishes, publishesArrived, unique, type Doors } from './support';

export function describeMqtt5Properties(doors: Doors): void {
  const clients = clientsFor(doors);

  describe(`${doors.main.name}, MQTT 5.0: reason codes on acknowledgements`, () => {
    it('[MQTT-3.4.2-1] [MQTT-3.5.2-1] PUBACK and PUBREC say 0x00 with a subscriber and 0x10 No matching subscribers without one', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('acks');
      const sub = await c.mqtt({ protocolVersion: 5 });
      await sub.client.subscribeAsync(topic, { qos: 1 });
      const { raw } = await c.rawConnected(5);
      const nobody = unique('nobody');
      raw.send(
        { cmd: 'publish', topic, payload: Buffer.from('a'), qos: 1, messageId: 1, dup: false, retain: false },
        { cmd: 'publish', topic: nobody, payload: Buffer.from('b'), qos: 1, messageId: 2, dup: false, retain: false },
        { cmd: 'publish', topic, payload: Buffer.from('c'), qos: 2, messageId: 3, dup: false, retain: false },
        { cmd: 'publish', topic: nobody, payload: Buffer.from('d'), qos: 2, messageId: 4, dup: false, retain: false },
      );
      const pubacks = [(await raw.next('puback')) as IPubackPacket, (await raw.next('puback')) as IPubackPacket];
      const pubrecs = [(await raw.next('pubrec')) as IPubrecPacket, (await raw.next('pubrec')) as IPubrecPacket];
      expect(pubacks.map((p) => [p.messageId, p.reasonCode ?? 0])).toEqual([[1, 0x00], [2, 0x10]]);
      expect(pubrecs.map((p) => [p.messageId, p.reasonCode ?? 0])).toEqual([[3, 0x00], [4, 0x10]]);
    });

    it('[MQTT-3.8.4-6] [MQTT-3.9.3-1] SUBACK has a reason code per filter, in order: the granted QoS, or 0x8F for an invalid filter or share name ([MQTT-4.8.2-1] [MQTT-4.8.2-2])', async (ctx) => {
      const c = clients(ctx);
      const { raw } = await c.rawConnected(5);
      const topic = unique('suback');
      raw.send({
        cmd: 'subscribe',
        messageId: 9,
        subscriptions: [
          { topic: `${topic}/0`, qos: 0 },
          { topic: `${topic}/1`, qos: 1 },
          { topic: `${topic}/2`, qos: 2 },
          { topic: `${topic}/#/x`, qos: 1 },
          { topic: `$share/a+b/${topic}`, qos: 1 },
          { topic: '$share/group', qos: 1 },
          { topic: `$share/group/${topic}`, qos: 2 },
        ],
      });
      const suback = (await raw.next('suback')) as ISubackPacket;
      expect(suback).toMatchObject({ messageId: 9, granted: [0x00, 0x01, 0x02, 0x8f, 0x8f, 0x8f, 0x02] });
      expect(raw.closed).toBe(false);
    });

    it('[MQTT-3.8.3-4] No Local on a shared subscription is a protocol error: DISCONNECT 0x82', async (ctx) => {
      const c = clients(ctx);
      const { raw } = await c.rawConnected(5);
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$share/g/${unique('nl')}`, qos: 1, nl: true }] });
      await expectClosedBy(raw, 5, 0x82);
    });
  });

  describe(`${doors.main.name}, MQTT 5.0: message properties`, () => {
    it('[MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] Payload Format Indicator, Response Topic, Correlation Data, user properties and Content Type reach subscribers unaltered, live and from an offline queue', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('props');
      const clientId = unique('props-offline');
      const properties = {
        payloadFormatIndicator: true,
        contentType: 'application/json; charset=utf-8',
        responseTopic: `${topic}/reply/ü`,
        correlationData: Buffer.from([0, 255, 1, 254]),
        userProperties: { z: 'last letter', a: ['1', '2', '3'], 'ключ': 'значение' },
      };
      const live = await c.mqtt({ protocolVersion: 5 });
      await live.client.subscribeAsync(topic, { qos: 1 });
      const legacy = await c.mqtt({ protocolVersion: 4 });
      await legacy.client.subscribeAsync(topic, { qos: 1 });
      const { raw: offline } = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      offline.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
      await offline.next('suback');
      await disconnect(offline);

      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(topic, '{"v":1}', { qos: 1, properties });
      await eventually(() => live.messages.length === 1 && legacy.messages.length === 1, 'the message on both subscribers');
      expect(live.messages[0]!.properties).toMatchObject(properties);
      expect(Object.keys(live.messages[0]!.properties.userProperties!)).toEqual(Object.keys(properties.userProperties));
      // a 3.1.1 subscriber gets the same application message, without properties
      expect(legacy.messages[0]).toMatchObject({ topic, payload: '{"v":1}' });

      const { raw: back } = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      const [queued] = await publishesArrived(back, 1);
      expect(queued!.properties).toMatchObject(properties);
      expect(Object.keys(queued!.properties!.userProperties!)).toEqual(Object.keys(properties.userProperties));
    });

    it('[MQTT-3.3.2-6] a message carries its Message Expiry Interval less the time it waited: live, and from an offline queue', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('expiry');
      const clientId = unique('expiry-offline');
      const live = await c.mqtt({ protocolVersion: 5 });
      await live.client.subscribeAsync(topic, { qos: 1 });
      const { raw: offline } = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      offline.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
      await offline.next('suback');
      await disconnect(offline);

      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(topic, 'short', { qos: 1, properties: { messageExpiryInterval: 2 } });
      await pub.publishAsync(topic, 'long', { qos: 1, properties: { messageExpiryInterval: 30 } });
      await pub.publishAsync(topic, 'forever', { qos: 1 });
      await eventually(() => live.messages.length === 3, 'the live messages');
      expect(live.messages.map((m) => [m.payload, m.properties.messageExpiryInterval])).toEqual([
        ['short', 2],
        ['long', 30],
        ['forever', undefined],
      ]);

      await settle(2_100);
      const { raw: back } = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      await publishesArrived(back, 2);
      await settle(300);
      // [MQTT-3.3.2-5] the expired one is not delivered
      const queued = publishes(back);
      expect(payloads(queued)).toEqual(['long', 'forever']);
      expect(queued[0]!.properties?.messageExpiryInterval).toBeLessThanOrEqual(28);
      expect(queued[0]!.properties?.messageExpiryInterval).toBeGreaterThanOrEqual(20);
      expect(queued[1]!.properties?.messageExpiryInterval).toBeUndefined();
      await acknowledge(back, ...queued);
    });
  });

  describe(`${doors.main.name}, MQTT 5.0: CONNACK`, () => {
    it('(MQTT 5.0 3.2.2.3.15) Request Response Information 1 is answered with Response Information; [MQTT-3.1.2-28] 0 with none', async (ctx) => {
      const c = clients(ctx);
      const asked = await c.rawConnected(5, { properties: { requestResponseInformation: true } });
      const notAsked = await c.rawConnected(5, { properties: { requestResponseInformation: false } });
      const silent = await c.rawConnected(5);
      expect(asked.connack.properties?.responseInformation).toMatch(/.+/);
      expect(notAsked.connack.properties?.responseInformation).toBeUndefined();
      expect(silent.connack.properties?.responseInformation).toBeUndefined();
    });

    it('[MQTT-3.2.2-16] each empty client id gets a new Assigned Client Identifier; [MQTT-3.1.3-7] the session is kept under it', async (ctx) => {
      const c = clients(ctx);
      const first = await c.rawConnected(5, { clientId: '', clean: true, properties: { sessionExpiryInterval: 60 } });
      const second = await c.rawConnected(5, { clientId: '', clean: true });
      const assigned = first.connack.properties?.assignedClientIdentifier;
      expect(assigned).toMatch(/.+/);
      expect(second.connack.properties?.assignedClientIdentifier).toMatch(/.+/);
      expect(second.connack.properties?.assignedClientIdentifier).not.toBe(assigned);
      await disconnect(first.raw);
      const resumed = await c.rawConnected(5, { clientId: assigned!, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(resumed.connack.sessionPresent).toBe(true);
      expect(resumed.connack.properties?.assignedClientIdentifier).toBeUndefined();
    });
  });
}
