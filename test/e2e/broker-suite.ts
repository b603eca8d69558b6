/**
 * The end-to-end scenarios every device door must pass, with real clients: MQTT.js speaking
 * 3.1.1 and 5.0, and raw sockets where the test needs exact bytes. tcp.test.ts and
 * listener-ws.test.ts run this one suite over their door; the conformance scenarios, one file per
 * behaviour under conformance/, are part of it.
 */
import type { MqttClient } from 'mqtt';
import { describe, expect, it, type TestContext } from 'vitest';
import { collect, connectClient, endAll, eventually, settle } from '../support/clients';
import { describeDefaultLimits } from './default-limits';
import { describeFlowControl } from './conformance/flow-control';
import { describeKeepAlive } from './conformance/keep-alive';
import { describeMqtt5Properties } from './conformance/mqtt5-properties';
import { describeRetained } from './conformance/retained';
import { describeSessions } from './conformance/sessions';
import { describeSubscriptions } from './conformance/subscriptions';
import type { Doors } from './conformance/support';
import type { Door } from '../support/clients';
import { describeTopicAliases } from './conformance/topic-alias';
import { describeWills } from './conformance/will';

let counter = 0;
const unique = (name: string): string => `${name}-${process.pid}-${++counter}`;

/**
 * The scenarios over one door; given the listener's `Doors` (a second transport and a
 * small-limits harness), the conformance scenarios too.
 */
export function describeBrokerSuite(doorOrDoors: Door | Doors): void {
  const doors = 'main' in doorOrDoors ? doorOrDoors : undefined;
  const door = doors?.main ?? (doorOrDoors as Door);
  /** Connects MQTT.js clients on the door for one test, each ended when that test finishes. */
  const clientsOf = (ctx: TestContext) => {
    const open: MqttClient[] = [];
    ctx.onTestFinished(() => endAll(...open.splice(0)));
    return async (options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> => {
      const c = door.connect ? await door.connect(options) : await connectClient(door.url(), options);
      open.push(c);
      return c;
    };
  };
  // Registered only on doors that enforce keep-alive (the listener's; not yet the API Gateway door).
  const keepAliveIt = (name: string, test: () => Promise<void>): void => {
    if (door.enforcesKeepAlive !== false) it(name, test);
  };

  for (const protocolVersion of [4, 5] as const) {
    const v = protocolVersion === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1';

    describe(`${door.name}, ${v}`, () => {
      it('delivers a message on an exact subscription', async (ctx) => {
        const client = clientsOf(ctx);
        const topic = unique('exact');
        const sub = await client({ protocolVersion });
        const got = collect(sub);
        await sub.subscribeAsync(topic, { qos: 0 });
        const pub = await client({ protocolVersion });
        await pub.publishAsync(topic, 'hello');
        await eventually(() => got.length === 1, 'the message');
        expect(got[0]).toMatchObject({ topic, payload: 'hello', qos: 0, retain: false });
      });

      it("(MQTT 4.7.1.3) '+' matches exactly one level, (MQTT 4.7.1.2) '#' any number including the parent", async (ctx) => {
        const client = clientsOf(ctx);
        const root = unique('wild');
        const plus = await client({ protocolVersion });
        const hash = await client({ protocolVersion });
        const gotPlus = collect(plus);
        const gotHash = collect(hash);
        await plus.subscribeAsync(`${root}/+/temp`);
        await hash.subscribeAsync(`${root}/#`);
        const pub = await client({ protocolVersion });
        for (const topic of [`${root}/a/temp`, `${root}/a/b/temp`, `${root}/b/temp`, root, `${root}/a/humidity`]) {
          await pub.publishAsync(topic, topic, { qos: 1 });
        }
        await eventually(() => gotHash.length === 5, 'all five on the # subscription');
        await settle(200);
        expect(gotPlus.map((m) => m.topic)).toEqual([`${root}/a/temp`, `${root}/b/temp`]);
        expect(gotHash.map((m) => m.topic)).toEqual([`${root}/a/temp`, `${root}/a/b/temp`, `${root}/b/temp`, root, `${root}/a/humidity`]);
      });

      it("[MQTT-4.7.2-1] '#' and '+' do not match topics beginning with '$'", async (ctx) => {
        const client = clientsOf(ctx);
        const tag = unique('dollar');
        const all = await client({ protocolVersion });
        const dollar = await client({ protocolVersion });
        const gotAll = collect(all);
        const gotDollar = collect(dollar);
        await all.subscribeAsync(['#', `+/${tag}`]);
        await dollar.subscribeAsync(`$test/${tag}`);
        const pub = await client({ protocolVersion });
        await pub.publishAsync(`$test/${tag}`, 'x', { qos: 1 });
        await eventually(() => gotDollar.length === 1, 'the $ topic on its exact subscription');
        await settle(300);
        expect(gotAll.filter((m) => m.topic.includes(tag))).toEqual([]);
      });

      it('[MQTT-3.3.4-1] QoS 1 is delivered at QoS 1 and acknowledged', async (ctx) => {
        const client = clientsOf(ctx);
        const topic = unique('qos1');
        const sub = await client({ protocolVersion });
        const got = collect(sub);
        await sub.subscribeAsync(topic, { qos: 1 });
        const pub = await client({ protocolVersion });
        const acks: number[] = [];
        pub.on('packetreceive', (packet) => {
          if (packet.cmd === 'puback') acks.push(packet.messageId!);
        });
        const sent = await pub.publishAsync(topic, 'one', { qos: 1 });
        // [MQTT-4.3.2-2] the PUBACK carries the PUBLISH's packet identifier
        expect(acks).toEqual([sent!.messageId]);
        await eventually(() => got.length === 1, 'the QoS 1 message');
        expect(got[0]).toMatchObject({ payload: 'one', qos: 1 });
      });

      it('[MQTT-4.3.3-2] QoS 2 is delivered exactly once', async (ctx) => {
        const client = clientsOf(ctx);
        const topic = unique('qos2');
        const sub = await client({ protocolVersion });
        const got = collect(sub);
        await sub.subscribeAsync(topic, { qos: 2 });
        const pub = await client({ protocolVersion });
        for (let i = 0; i < 5; i++) await pub.publishAsync(topic, `m${i}`, { qos: 2 });
        await eventually(() => got.length >= 5, 'five QoS 2 messages');
        await settle(300);
        expect(got.map((m) => [m.payload, m.qos])).toEqual([0, 1, 2, 3, 4].map((i) => [`m${i}`, 2]));
      });

      it('[MQTT-3.10.4-5] UNSUBACK answers every filter (5.0: 0x00 removed, 0x11 none existed, 0x8F invalid)', async () => {
        const raw = await door.raw(protocolVersion);
        try {
          const topic = unique('unsuback');
          raw.send(
            { cmd: 'connect', clientId: unique('unsuback'), protocolVersion, clean: true, keepalive: 30 },
            // the same filter twice in one SUBSCRIBE: one subscription, both granted [MQTT-3.8.4-3]
            { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }, { topic, qos: 0 }] },
            { cmd: 'unsubscribe', messageId: 2, unsubscriptions: [topic, `${topic}/never`, 'a/#/b', topic] },
          );
          expect(await raw.next('suback')).toMatchObject({ messageId: 1, granted: [1, 0] });
          const unsuback = await raw.next('unsuback');
          expect(unsuback).toMatchObject({ messageId: 2 });
          if (protocolVersion === 5) expect(unsuback).toMatchObject({ granted: [0x00, 0x11, 0x8f, 0x11] });
          expect(raw.closed).toBe(false);
        } finally {
          raw.close();
        }
      });

      it('[MQTT-3.3.1-2] a QoS 0 PUBLISH with DUP set is malformed and closes the connection', async () => {
        const raw = await door.raw(protocolVersion);
        raw.send({ cmd: 'connect', clientId: unique('dup0'), protocolVersion, clean: true, keepalive: 30 });
        await raw.next('connack');
        raw.send({ cmd: 'publish', topic: unique('dup0'), payload: Buffer.from('x'), qos: 0, dup: true, retain: false });
        await raw.waitClosed();
        if (protocolVersion === 5) expect(raw.packets).toMatchObject([{ cmd: 'disconnect', reasonCode: 0x81 }]);
      });

      if (protocolVersion === 5) {
        it('[MQTT-3.1.2-24] never sends a subscriber a packet larger than its Maximum Packet Size', async (ctx) => {
          const client = clientsOf(ctx);
          const topic = unique('maxsize');
          const small = await client({ protocolVersion, properties: { maximumPacketSize: 128 } });
          const big = await client({ protocolVersion });
          const gotSmall = collect(small);
          const gotBig = collect(big);
          await small.subscribeAsync(topic, { qos: 1 });
          await big.subscribeAsync(topic, { qos: 1 });
          const pub = await client({ protocolVersion });
          await pub.publishAsync(topic, 'x'.repeat(500), { qos: 1 });
          await pub.publishAsync(topic, 'fits', { qos: 1 });
          await eventually(() => gotBig.length === 2 && gotSmall.length === 1, 'the deliveries');
          expect(gotSmall.map((m) => m.payload)).toEqual(['fits']);
          expect(gotBig.map((m) => m.payload.length)).toEqual([500, 4]);
        });

        it('[MQTT-3.4.2-1] PUBACK says 0x10 No matching subscribers when nobody subscribed', async (ctx) => {
          const client = clientsOf(ctx);
          const pub = await client({ protocolVersion });
          const codes: number[] = [];
          pub.on('packetreceive', (packet) => {
            if (packet.cmd === 'puback') codes.push(packet.reasonCode ?? 0);
          });
          await pub.publishAsync(unique('nobody'), 'x', { qos: 1 });
          expect(codes).toEqual([0x10]);
        });
      }

      it('[MQTT-3.8.4-8] delivers at the lower of the published and the granted QoS', async (ctx) => {
        const client = clientsOf(ctx);
        const topic = unique('downgrade');
        const low = await client({ protocolVersion });
        const high = await client({ protocolVersion });
        const gotLow = collect(low);
        const gotHigh = collect(high);
        await low.subscribeAsync(topic, { qos: 0 });
        await high.subscribeAsync(topic, { qos: 2 });
        const pub = await client({ protocolVersion });
        await pub.publishAsync(topic, 'q2', { qos: 2 });
        await pub.publishAsync(topic, 'q1', { qos: 1 });
        await eventually(() => gotLow.length === 2 && gotHigh.length === 2, 'both messages on both subscribers');
        expect(gotLow.map((m) => m.qos)).toEqual([0, 0]);
        expect(gotHigh.map((m) => m.qos)).toEqual([2, 1]);
      });

      it('[MQTT-3.10.4-1] unsubscribe stops delivery', async (ctx) => {
        const client = clientsOf(ctx);
        const topic = unique('unsub');
        const sub = await client({ protocolVersion });
        const got = collect(sub);
        await sub.subscribeAsync(topic, { qos: 1 });
        const pub = await client({ protocolVersion });
        await pub.publishAsync(topic, 'before', { qos: 1 });
        await eventually(() => got.length === 1, 'the message before unsubscribing');
        await sub.unsubscribeAsync(topic);
        await pub.publishAsync(topic, 'after', { qos: 1 });
        await settle(400);
        expect(got.map((m) => m.payload)).toEqual(['before']);
      });

      it('[MQTT-3.1.4-3] a second connection with the same client id closes the first', async (ctx) => {
        const client = clientsOf(ctx);
        const clientId = unique('takeover');
        const first = await client({ protocolVersion, clientId });
        const disconnects: number[] = [];
        first.on('disconnect', (packet) => disconnects.push(packet.reasonCode ?? -1));
        let firstClosed = false;
        first.on('close', () => (firstClosed = true));
        const second = await client({ protocolVersion, clientId });
        await eventually(() => firstClosed, 'the first connection to be closed');
        if (protocolVersion === 5) expect(disconnects).toEqual([0x8e]);
        // the second connection owns the client id now and works
        const topic = unique('after-takeover');
        const got = collect(second);
        await second.subscribeAsync(topic, { qos: 1 });
        await second.publishAsync(topic, 'still here', { qos: 1 });
        await eventually(() => got.length === 1, 'the message on the second connection');
      });

      it('[MQTT-3.12.4-1] answers PINGREQ with PINGRESP', async (ctx) => {
        const client = clientsOf(ctx);
        const c = await client({ protocolVersion, keepalive: 1 });
        const pongs: number[] = [];
        c.on('packetreceive', (packet) => {
          if (packet.cmd === 'pingresp') pongs.push(Date.now());
        });
        await eventually(() => pongs.length >= 1, 'a PINGRESP', 5_000);
        expect(c.connected).toBe(true);
      });

      it('[MQTT-3.8.4-6] answers an invalid filter in SUBACK and keeps the valid ones', async () => {
        // MQTT.js refuses to send an invalid filter, so this client writes the bytes itself.
        const raw = await door.raw(protocolVersion);
        try {
          raw.send(
            { cmd: 'connect', clientId: unique('badfilter'), protocolVersion, clean: true, keepalive: 30 },
            { cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: unique('valid'), qos: 1 }, { topic: 'bad/#/filter', qos: 1 }, { topic: 'a+', qos: 0 }] },
          );
          const suback = await raw.next('suback');
          // 3.1.1 has one failure code, 0x80; 5.0 says why: 0x8F Topic Filter invalid
          const failure = protocolVersion === 5 ? 0x8f : 0x80;
          expect(suback).toMatchObject({ messageId: 7, granted: [1, failure, failure] });
        } finally {
          raw.close();
        }
      });

      it('[MQTT-3.1.0-1] a connection whose first packet is not CONNECT is closed without an answer', async () => {
        const raw = await door.raw(protocolVersion);
        raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'x', qos: 0 }] });
        await raw.waitClosed();
        expect(raw.packets).toEqual([]);
      });

      it('[MQTT-3.1.0-2] a second CONNECT is a protocol error that closes the connection', async () => {
        const raw = await door.raw(protocolVersion);
        const connect = { cmd: 'connect' as const, clientId: unique('twice'), protocolVersion, clean: true, keepalive: 30 };
        raw.send(connect);
        await raw.next('connack');
        raw.send(connect);
        await raw.waitClosed();
        // 5.0 learns why before the close (MQTT 5.0 section 4.13)
        if (protocolVersion === 5) expect(raw.packets).toMatchObject([{ cmd: 'disconnect', reasonCode: 0x82 }]);
        else expect(raw.packets).toEqual([]);
      });

      it('[MQTT-3.3.2-2] a PUBLISH with a wildcard in its topic closes the connection', async () => {
        const raw = await door.raw(protocolVersion);
        raw.send({ cmd: 'connect', clientId: unique('wildpub'), protocolVersion, clean: true, keepalive: 30 });
        await raw.next('connack');
        raw.send({ cmd: 'publish', topic: 'a/+/b', payload: Buffer.from('x'), qos: 0, dup: false, retain: false });
        await raw.waitClosed();
        if (protocolVersion === 5) expect(raw.packets).toMatchObject([{ cmd: 'disconnect', reasonCode: 0x90 }]);
      });

      it('[MQTT-2.2.2-2] a packet with invalid fixed-header flags closes only that connection', async (ctx) => {
        const client = clientsOf(ctx);
        const bystander = await client({ protocolVersion });
        const raw = await door.raw(protocolVersion);
        raw.send({ cmd: 'connect', clientId: unique('malformed'), protocolVersion, clean: true, keepalive: 30 });
        await raw.next('connack');
        // SUBSCRIBE's fixed-header flags must be 0010; these are 0000
        raw.sendBytes(Buffer.from([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x78, 0x00]));
        await raw.waitClosed();
        // 5.0 is told why: 0x81 Malformed Packet
        if (protocolVersion === 5) expect(raw.packets).toMatchObject([{ cmd: 'disconnect', reasonCode: 0x81 }]);
        // everyone else is unaffected
        const topic = unique('bystander');
        const got = collect(bystander);
        await bystander.subscribeAsync(topic);
        await bystander.publishAsync(topic, 'fine', { qos: 1 });
        await eventually(() => got.length === 1, 'the bystander to keep its service');
      });

      it('[MQTT-4.3.3-2] a resent QoS 2 PUBLISH (DUP) before PUBREL is acknowledged but not delivered twice', async (ctx) => {
        const client = clientsOf(ctx);
        const topic = unique('dup2');
        const sub = await client({ protocolVersion });
        const got = collect(sub);
        await sub.subscribeAsync(topic, { qos: 2 });
        const raw = await door.raw(protocolVersion);
        try {
          raw.send({ cmd: 'connect', clientId: unique('dup2pub'), protocolVersion, clean: true, keepalive: 30 });
          await raw.next('connack');
          const publish = { cmd: 'publish' as const, topic, payload: Buffer.from('once'), qos: 2 as const, messageId: 42, dup: false, retain: false };
          raw.send(publish);
          expect(await raw.next('pubrec')).toMatchObject({ messageId: 42 });
          raw.send({ ...publish, dup: true });
          expect(await raw.next('pubrec')).toMatchObject({ messageId: 42 });
          raw.send({ cmd: 'pubrel', messageId: 42 });
          expect(await raw.next('pubcomp')).toMatchObject({ messageId: 42 });
          await eventually(() => got.length >= 1, 'the message');
          await settle(300);
          expect(got.map((m) => m.payload)).toEqual(['once']);
        } finally {
          raw.close();
        }
      });

      it(protocolVersion === 5 ? '[MQTT-3.2.2-16] an empty client id gets an Assigned Client Identifier' : '[MQTT-3.1.3-8] an empty client id with clean session 0 is refused with 0x02', async () => {
        const raw = await door.raw(protocolVersion);
        try {
          if (protocolVersion === 5) raw.send({ cmd: 'connect', clientId: '', protocolVersion, clean: true, keepalive: 30 });
          // mqtt-packet will not encode this invalid CONNECT, so here are its bytes:
          // CONNECT, remaining length 12, "MQTT", level 4, flags 0 (clean session 0), keep-alive 30, client id ""
          else raw.sendBytes(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x1e, 0x00, 0x00]));
          const connack = await raw.next('connack');
          if (protocolVersion === 5) {
            expect(connack).toMatchObject({ reasonCode: 0 });
            expect((connack as { properties?: { assignedClientIdentifier?: string } }).properties?.assignedClientIdentifier).toMatch(/.+/);
          } else {
            expect(connack).toMatchObject({ returnCode: 2, sessionPresent: false });
            await raw.waitClosed();
          }
        } finally {
          raw.close();
        }
      });
    });
  }

  describeDefaultLimits(door);

  describe(`${door.name}, connection rules`, () => {
    it('[MQTT-3.1.2-2] a CONNECT of an unsupported protocol level gets CONNACK 0x01 and is closed', async () => {
      const raw = await door.raw(4);
      // CONNECT, remaining length 12, "MQTT", protocol level 6, clean start, keep-alive 30, client id ""
      raw.sendBytes(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x1e, 0x00, 0x00]));
      expect(await raw.next('connack')).toMatchObject({ returnCode: 1, sessionPresent: false });
      await raw.waitClosed();
    });

    keepAliveIt('[MQTT-3.1.2-24] (3.1.1) closes a connection silent for 1.5 times its keep-alive', async () => {
      const raw = await door.raw(4);
      // Timed from the CONNECT, as the broker times it: a CONNACK slowed by a busy machine leaves
      // less than 1.5 s between it and the close.
      const since = Date.now();
      raw.send({ cmd: 'connect', clientId: unique('silent'), protocolVersion: 4, clean: true, keepalive: 1 });
      await raw.next('connack');
      await raw.waitClosed(5_000);
      // closed by the broker after 1.5 s of silence, not at once
      expect(Date.now() - since).toBeGreaterThanOrEqual(1_450);
    });

    it('keeps a connection that sends within its keep-alive', async () => {
      const raw = await door.raw(4);
      try {
        raw.send({ cmd: 'connect', clientId: unique('chatty'), protocolVersion: 4, clean: true, keepalive: 1 });
        await raw.next('connack');
        // Three pings 0.7 s apart outlive the 1.5 s a silent connection gets (a fourth proved nothing more).
        for (let i = 0; i < 3; i++) {
          await settle(700);
          raw.send({ cmd: 'pingreq' });
          await raw.next('pingresp');
        }
        expect(raw.closed).toBe(false);
      } finally {
        raw.close();
      }
    });
  });

  describe(`${door.name}, fan-out`, () => {
    it('50 subscribers on one topic all receive every message, in order', async (ctx) => {
      const client = clientsOf(ctx);
      const topic = unique('fanout');
      const subscribers = await Promise.all(Array.from({ length: 50 }, (_, i) => client({ protocolVersion: i % 2 ? 5 : 4 })));
      const received = subscribers.map(collect);
      await Promise.all(subscribers.map((s) => s.subscribeAsync(topic, { qos: 1 })));
      const pub = await client();
      for (let i = 0; i < 10; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });
      await eventually(() => received.every((got) => got.length === 10), 'every subscriber to receive all 10', 20_000);
      const expected = Array.from({ length: 10 }, (_, i) => `m${i}`);
      for (const got of received) expect(got.map((m) => m.payload)).toEqual(expected);
    });
  });

  describe(`${door.name}, packets sent back to back`, () => {
    it('handles CONNECT, SUBSCRIBE and PUBLISH written at once, in order', async () => {
      const topic = unique('b2b');
      const raw = await door.raw(4);
      try {
        raw.send(
          { cmd: 'connect', clientId: unique('raw'), protocolVersion: 4, clean: true, keepalive: 30 },
          { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] },
          ...Array.from({ length: 5 }, (_, i) => ({
            cmd: 'publish' as const,
            topic,
            payload: Buffer.from(`p${i}`),
            qos: 1 as const,
            messageId: 10 + i,
            dup: false,
            retain: false,
          })),
        );
        await eventually(() => raw.packets.filter((p) => p.cmd === 'publish').length === 5, 'its own five publishes back');
        const order = raw.packets.map((p) => p.cmd);
        expect(order[0]).toBe('connack');
        expect(order[1]).toBe('suback');
        const payloads = raw.packets.flatMap((p) => (p.cmd === 'publish' ? [p.payload.toString()] : []));
        expect(payloads).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
        const acks = raw.packets.flatMap((p) => (p.cmd === 'puback' && p.messageId! >= 10 ? [p.messageId] : []));
        expect(acks).toEqual([10, 11, 12, 13, 14]);
      } finally {
        raw.close();
      }
    });
  });

  if (!doors) return;
  // Sessions one at a time: run beside the others, a resumed session was once sent again a QoS 1
  // message it had acknowledged (under investigation, see the sessions scenario on resends).
  describeSessions(doors);
  // The other conformance scenarios open their clients through their own test's context and use
  // topics and client ids no other test uses, so they run side by side (vitest's maxConcurrency,
  // 5): most of each one's time is waiting (a keep-alive, an expiry, a message that must not come).
  describe.concurrent(`${door.name}: conformance`, () => {
    describeRetained(doors);
    describeWills(doors);
    describeKeepAlive(doors);
    describeMqtt5Properties(doors);
    describeTopicAliases(doors);
    describeSubscriptions(doors);
    describeFlowControl(doors);
  });
}
