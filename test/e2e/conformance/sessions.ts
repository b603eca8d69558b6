/**
 * Persistent sessions (3.1.1 Clean Session 0, 5.0 Session Expiry Interval) and session takeover,
 * as clients observe them: the Session Present flag, subscriptions and queued QoS 1/2 messages
 * that outlive a connection, resends with DUP, expiry, and a second connection for a client id.
 */
import { describe, expect, it } from 'vitest';
import { eventually, settle, type RawConnection } from '../../support/clients';
import {
  acknowledge,
  clientsFor,
  disconnect,
  handled,
  expectClosedBy,
  publishes,
  publishesArrived,
  unique,
  VERSIONS,
  versionName,
  type ConnectFields,
  type Doors,
  type Version,
} from './support';

/** CONNECT fields of a client whose session outlives its connection. */
function persistent(version: Version, clientId: string, sessionExpiryInterval = 60): ConnectFields {
  return version === 5 ? { clientId, clean: false, properties: { sessionExpiryInterval } } : { clientId, clean: false };
}

/** The same for MQTT.js. */
function persistentOptions(version: Version, clientId: string, sessionExpiryInterval = 60) {
  return { protocolVersion: version, clientId, clean: false, ...(version === 5 ? { properties: { sessionExpiryInterval } } : {}) };
}

export function describeSessions(doors: Doors): void {
  const clients = clientsFor(doors);

  for (const version of VERSIONS) {
    const v5 = version === 5;
    describe(`${doors.main.name}, ${versionName(version)}: persistent sessions`, () => {
      it(
        v5
          ? '[MQTT-3.1.2-23] [MQTT-3.1.2-5] [MQTT-3.2.2-3] subscriptions and QoS 1/2 messages for an offline session are kept and delivered in order on resume'
          : '[MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2] [MQTT-3.2.2-3] subscriptions and QoS 1/2 messages for an offline session are kept and delivered in order on resume',
        async (ctx) => {
          const c = clients(ctx);
          const clientId = unique('persist');
          const topic = unique('persist');
          const first = await c.mqtt(persistentOptions(version, clientId));
          // no session existed for this client id: Session Present 0
          expect(first.connack.sessionPresent).toBe(false);
          await first.client.subscribeAsync(topic, { qos: 2 });
          await first.client.endAsync();

          const { client: pub } = await c.mqtt({ protocolVersion: version });
          const sent: Array<[string, 1 | 2]> = [['m0', 1], ['m1', 2], ['m2', 1], ['m3', 2], ['m4', 1]];
          for (const [payload, qos] of sent) await pub.publishAsync(topic, payload, { qos });

          // raw, to see the PUBLISH packets in the order they travel (MQTT.js hands a QoS 2 message to the application only at PUBREL)
          const second = await c.rawConnected(version, persistent(version, clientId));
          expect(second.connack.sessionPresent).toBe(true);
          const queued = await publishesArrived(second.raw, sent.length);
          // [MQTT-4.6.0-6] (3.1.1) / [MQTT-4.6.0-5] (5.0): in the order they were published, each once
          expect(queued.map((p) => [p.payload.toString(), p.qos])).toEqual(sent);
          expect(queued.every((p) => p.topic === topic)).toBe(true);
          await acknowledge(second.raw, ...queued);

          // the subscription is still there: no SUBSCRIBE on this connection
          await pub.publishAsync(topic, 'live', { qos: 1 });
          const all = await publishesArrived(second.raw, sent.length + 1);
          expect(all.at(-1)).toMatchObject({ topic, qos: 1 });
          expect(all.at(-1)!.payload.toString()).toBe('live');
        },
      );

      it(
        v5
          ? '[MQTT-3.1.2-4] [MQTT-3.2.2-2] Clean Start discards the session: Session Present 0, no queued messages, no subscriptions'
          : '[MQTT-3.1.2-6] [MQTT-3.2.2-1] Clean Session 1 discards the session: Session Present 0, no queued messages, no subscriptions',
        async (ctx) => {
          const c = clients(ctx);
          const clientId = unique('clean');
          const topic = unique('clean');
          const first = await c.mqtt(persistentOptions(version, clientId));
          await first.client.subscribeAsync(topic, { qos: 1 });
          await first.client.endAsync();
          const { client: pub } = await c.mqtt({ protocolVersion: version });
          await pub.publishAsync(topic, 'queued', { qos: 1 });

          const clean = await c.mqtt({ protocolVersion: version, clientId, clean: true });
          expect(clean.connack.sessionPresent).toBe(false);
          await pub.publishAsync(topic, 'after', { qos: 1 });
          await settle(400);
          expect(clean.messages).toEqual([]);
          await clean.client.endAsync();

          // the clean session lasted only as long as its connection
          const again = await c.mqtt(persistentOptions(version, clientId));
          expect(again.connack.sessionPresent).toBe(false);
        },
      );

      it('[MQTT-3.3.1-1] [MQTT-4.4.0-1] an unacknowledged QoS 1 PUBLISH is resent with DUP and its packet id, a PUBREC-ed QoS 2 one as PUBREL', async (ctx) => {
        const c = clients(ctx);
        const clientId = unique('resend');
        const topic = unique('resend');
        const { raw } = await c.rawConnected(version, persistent(version, clientId));
        raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
        await raw.next('suback');
        const { client: pub } = await c.mqtt({ protocolVersion: version });
        await pub.publishAsync(topic, 'one', { qos: 1 });
        await pub.publishAsync(topic, 'two', { qos: 2 });
        const [one, two] = await publishesArrived(raw, 2);
        expect([one, two].map((p) => [p!.payload.toString(), p!.qos, p!.dup])).toEqual([['one', 1, false], ['two', 2, false]]);
        // QoS 2 half done: PUBREC sent, the broker's PUBREL arrives, PUBCOMP is never sent
        raw.send({ cmd: 'pubrec', messageId: two!.messageId! });
        expect(await raw.next('pubrel')).toMatchObject({ messageId: two!.messageId });
        raw.close(); // no PUBACK for 'one', no PUBCOMP for 'two'

        const resumed = await c.rawConnected(version, persistent(version, clientId));
        expect(resumed.connack.sessionPresent).toBe(true);
        const [again] = await publishesArrived(resumed.raw, 1);
        expect(again).toMatchObject({ topic, qos: 1, dup: true, messageId: one!.messageId });
        expect(again!.payload.toString()).toBe('one');
        expect(await resumed.raw.next('pubrel')).toMatchObject({ messageId: two!.messageId });
        // [MQTT-4.3.3-6] (5.0) / [MQTT-4.3.3-1] (3.1.1): a PUBLISH whose PUBREL went out is not sent again
        await settle(300);
        expect(publishes(resumed.raw)).toHaveLength(1);

        resumed.raw.send({ cmd: 'puback', messageId: one!.messageId! }, { cmd: 'pubcomp', messageId: two!.messageId! });
        await handled(resumed.raw);
        resumed.raw.close();
        // everything acknowledged: nothing is resent on the next resume
        const third = await c.rawConnected(version, persistent(version, clientId));
        expect(third.connack.sessionPresent).toBe(true);
        await settle(400);
        expect(third.raw.packets.filter((p) => p.cmd === 'publish' || p.cmd === 'pubrel')).toEqual([]);
      });

      it(
        v5 ? '[MQTT-3.1.4-3] a takeover keeps the session: the new connection resumes it, the old one gets DISCONNECT 0x8E' : '[MQTT-3.1.4-2] a takeover keeps the session: the new connection resumes it, the old one is closed',
        async (ctx) => {
          const c = clients(ctx);
          const clientId = unique('take');
          const topic = unique('take');
          const { raw: old } = await c.rawConnected(version, persistent(version, clientId));
          old.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
          await old.next('suback');

          const taker = await c.mqtt(persistentOptions(version, clientId));
          expect(taker.connack.sessionPresent).toBe(true);
          await expectClosedBy(old, version, 0x8e);
          const { client: pub } = await c.mqtt({ protocolVersion: version });
          await pub.publishAsync(topic, 'to the new connection', { qos: 1 });
          await eventually(() => taker.messages.length === 1, 'the message on the connection that took over');
          expect(taker.messages[0]).toMatchObject({ topic, payload: 'to the new connection' });
          expect(publishes(old)).toEqual([]);
        },
      );

      it(
        v5
          ? '(MQTT 5.0 3.1.2.11.2, 3.1.4) a takeover ends a session whose Session Expiry Interval is 0: the new connection gets a new session'
          : '[MQTT-3.1.2-6] a takeover ends a Clean Session 1 session: the new connection does not reuse its state',
        async (ctx) => {
          const c = clients(ctx);
          const clientId = unique('take-clean');
          const topic = unique('take-clean');
          const { raw: old } = await c.rawConnected(version, { clientId, clean: true });
          old.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
          await old.next('suback');

          const taker = await c.mqtt(persistentOptions(version, clientId));
          expect(taker.connack.sessionPresent).toBe(false);
          await expectClosedBy(old, version, 0x8e);
          const { client: pub } = await c.mqtt({ protocolVersion: version });
          await pub.publishAsync(topic, 'for the ended session', { qos: 1 });
          await settle(400);
          expect(taker.messages).toEqual([]);
        },
      );

      it(`${v5 ? '[MQTT-3.1.4-3]' : '[MQTT-3.1.4-2]'} two CONNECTs with one client id at the same moment through different doors: exactly one stays connected, and it works`, async (ctx) => {
        const c = clients(ctx);
        for (let round = 0; round < 3; round++) {
          const clientId = unique('race');
          const here = await c.raw(version, doors.main);
          const there = await c.raw(version, doors.other);
          const connect = { cmd: 'connect' as const, clientId, protocolVersion: version, clean: true, keepalive: 30 };
          here.send(connect);
          there.send(connect);
          await eventually(() => here.closed || there.closed, 'one of the two to be closed');
          await settle(300);
          const open = [here, there].filter((r) => !r.closed);
          const closed = [here, there].filter((r) => r.closed);
          expect(open).toHaveLength(1);
          await expectTakenOver(closed[0]!, version);
          // the survivor has its CONNACK and works
          const survivor = open[0]!;
          expect(survivor.packets[0]).toMatchObject({ cmd: 'connack', sessionPresent: false });
          const topic = unique('race');
          survivor.send(
            { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] },
            { cmd: 'publish', topic, payload: Buffer.from('mine'), qos: 1, messageId: 2, dup: false, retain: false },
          );
          const [delivered] = await publishesArrived(survivor, 1);
          expect(delivered!.payload.toString()).toBe('mine');
        }
      });
    });
  }

  describe(`${doors.main.name}, MQTT 5.0: session expiry`, () => {
    it('[MQTT-4.1.0-2] [MQTT-3.2.2-3] an expired session is gone; (MQTT 5.0 3.14.2.2.2) a longer Session Expiry on DISCONNECT keeps one', async (ctx) => {
      const c = clients(ctx);
      const expiring = unique('expiring');
      const extended = unique('extended');
      const topic = unique('expiry');
      const { raw: a } = await c.rawConnected(5, persistent(5, expiring, 1));
      const { raw: b } = await c.rawConnected(5, persistent(5, extended, 1));
      for (const raw of [a, b]) {
        raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
        await raw.next('suback');
      }
      await disconnect(a);
      // the client changes its mind on the way out: the session now outlives it by a minute
      await disconnect(b, { properties: { sessionExpiryInterval: 60 } });
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(topic, 'while away', { qos: 1 });
      // past the 1 s expiry, whole seconds included
      await settle(2_100);

      const a2 = await c.mqtt(persistentOptions(5, expiring));
      const b2 = await c.mqtt(persistentOptions(5, extended));
      expect(a2.connack.sessionPresent).toBe(false);
      expect(b2.connack.sessionPresent).toBe(true);
      await eventually(() => b2.messages.length === 1, 'the message kept for the extended session');
      expect(b2.messages[0]).toMatchObject({ payload: 'while away' });
      // the expired session lost its queued message and its subscription
      await pub.publishAsync(topic, 'after', { qos: 1 });
      await eventually(() => b2.messages.length === 2, 'the next message on the kept session');
      await settle(200);
      expect(a2.messages).toEqual([]);
    });

    it('(MQTT 5.0 3.14.2.2.2) Session Expiry Interval 0 on DISCONNECT ends a session that was to outlive the connection', async (ctx) => {
      const c = clients(ctx);
      const clientId = unique('end-on-disconnect');
      const { raw } = await c.rawConnected(5, persistent(5, clientId, 60));
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: unique('end'), qos: 1 }] });
      await raw.next('suback');
      await disconnect(raw, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
      const again = await c.mqtt(persistentOptions(5, clientId, 60));
      expect(again.connack.sessionPresent).toBe(false);
    });

    it('(MQTT 5.0 3.14.2.2.2) a non-zero Session Expiry on DISCONNECT after 0 on CONNECT is a protocol error: DISCONNECT 0x82, and no session is kept', async (ctx) => {
      const c = clients(ctx);
      const clientId = unique('bad-expiry');
      const { raw } = await c.rawConnected(5, { clientId, clean: true });
      raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
      await expectClosedBy(raw, 5, 0x82);
      const again = await c.mqtt(persistentOptions(5, clientId));
      expect(again.connack.sessionPresent).toBe(false);
    });
  });
}

/** The loser of a takeover race: closed; a 5.0 client is told 0x8E. */
async function expectTakenOver(raw: RawConnection, version: Version): Promise<void> {
  await raw.waitClosed();
  const disconnects = raw.packets.filter((p) => p.cmd === 'disconnect');
  if (version === 4) expect(disconnects).toEqual([]);
  else expect(disconnects).toMatchObject([{ reasonCode: 0x8e }]);
}
