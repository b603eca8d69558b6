/**
 * Will messages: published on every ungraceful end of a connection (socket closed, keep-alive
 * timeout, protocol error, takeover), not after a normal DISCONNECT (5.0: unless reason 0x04),
 * with its QoS and RETAIN; 5.0's Will Delay Interval, cancelled by a reconnect.
 */
import type { IConnectPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { eventually, settle } from '../../support/clients';
import {
  clientsFor,
  disconnect,
  expectClosedBy,
  unique,
  VERSIONS,
  versionName,
  type Doors,
  type Received,
  type TestClients,
  type Version,
} from './support';

type Will = NonNullable<IConnectPacket['will']>;

export function describeWills(doors: Doors): void {
  const clients = clientsFor(doors);

  /** A client watching a will topic (QoS 2, so the will arrives at its own QoS). */
  async function watch(c: TestClients, version: Version, topic: string): Promise<Received[]> {
    const watcher = await c.mqtt({ protocolVersion: version });
    await watcher.client.subscribeAsync(topic, { qos: 2 });
    return watcher.messages;
  }

  /** Proves the watcher would have seen a will by now: a control message arrives, and nothing before it. */
  async function expectNoWill(c: TestClients, version: Version, topic: string, seen: Received[]): Promise<void> {
    await settle(500);
    const { client } = await c.mqtt({ protocolVersion: version });
    await client.publishAsync(topic, 'control', { qos: 1 });
    await eventually(() => seen.length >= 1, 'the control message');
    expect(seen.map((m) => m.payload)).toEqual(['control']);
  }

  for (const version of VERSIONS) {
    const v5 = version === 5;
    // the same statement id in both versions: published when the network connection closes, unless after DISCONNECT
    const published = '[MQTT-3.1.2-8]';
    describe(`${doors.main.name}, ${versionName(version)}: wills`, () => {
      const will = (topic: string, extra: Partial<Will> = {}): Will => ({ topic, payload: Buffer.from('gone'), qos: 1, retain: false, ...extra });

      it(`${published} the will is published when the network connection closes without DISCONNECT`, async (ctx) => {
        const c = clients(ctx);
        const topic = unique('will-close');
        const seen = await watch(c, version, topic);
        const { raw } = await c.rawConnected(version, { will: will(topic) });
        raw.close();
        await eventually(() => seen.length === 1, 'the will');
        expect(seen[0]).toMatchObject({ topic, payload: 'gone', qos: 1, retain: false });
      });

      it(`${published} ${v5 ? '[MQTT-3.1.2-22]' : '[MQTT-3.1.2-24]'} the will is published when the keep-alive runs out`, async (ctx) => {
        const c = clients(ctx);
        const topic = unique('will-keepalive');
        const seen = await watch(c, version, topic);
        const { raw } = await c.rawConnected(version, { keepalive: 1, will: will(topic) });
        // silent from now on
        await expectClosedBy(raw, version, 0x8d);
        await eventually(() => seen.length === 1, 'the will');
        expect(seen[0]).toMatchObject({ topic, payload: 'gone' });
      });

      it(`${published} the will is published when the broker closes the connection for a protocol error`, async (ctx) => {
        const c = clients(ctx);
        const topic = unique('will-error');
        const seen = await watch(c, version, topic);
        const { raw } = await c.rawConnected(version, { will: will(topic) });
        // [MQTT-3.3.2-2] no wildcards in a topic name
        raw.send({ cmd: 'publish', topic: 'a/+', payload: Buffer.from('x'), qos: 0, dup: false, retain: false });
        await expectClosedBy(raw, version, 0x90);
        await eventually(() => seen.length === 1, 'the will');
      });

      it(`${published} ${v5 ? '[MQTT-3.1.4-3]' : '[MQTT-3.1.4-2]'} the will is published when another connection takes the client id over`, async (ctx) => {
        const c = clients(ctx);
        const topic = unique('will-takeover');
        const clientId = unique('will-takeover');
        const seen = await watch(c, version, topic);
        const { raw: old } = await c.rawConnected(version, { clientId, will: will(topic) });
        await c.rawConnected(version, { clientId });
        await expectClosedBy(old, version, 0x8e);
        await eventually(() => seen.length === 1, 'the will');
      });

      it(v5 ? '[MQTT-3.1.2-10] [MQTT-3.14.4-3] no will after a DISCONNECT with reason 0x00' : '[MQTT-3.1.2-10] no will after a DISCONNECT', async (ctx) => {
        const c = clients(ctx);
        const topic = unique('will-normal');
        const seen = await watch(c, version, topic);
        const { raw } = await c.rawConnected(version, { will: will(topic) });
        await disconnect(raw, v5 ? { reasonCode: 0 } : {});
        await expectNoWill(c, version, topic, seen);
      });

      it(
        v5 ? '[MQTT-3.1.2-15] a will with Will Retain is published retained, [MQTT-3.1.2-14] one without is not; both at their Will QoS' : '[MQTT-3.1.2-17] a will with Will Retain is published retained, [MQTT-3.1.2-16] one without is not; both at their Will QoS',
        async (ctx) => {
          const c = clients(ctx);
          const kept = unique('will-retained');
          const notKept = unique('will-plain');
          const seenKept = await watch(c, version, kept);
          const seenNotKept = await watch(c, version, notKept);
          const a = await c.rawConnected(version, { will: will(kept, { qos: 2, retain: true, payload: Buffer.from('kept') }) });
          const b = await c.rawConnected(version, { will: will(notKept, { qos: 0, retain: false, payload: Buffer.from('not kept') }) });
          a.raw.close();
          b.raw.close();
          await eventually(() => seenKept.length === 1 && seenNotKept.length === 1, 'both wills');
          // at the will's QoS (the watchers granted 2)
          expect(seenKept[0]).toMatchObject({ payload: 'kept', qos: 2 });
          expect(seenNotKept[0]).toMatchObject({ payload: 'not kept', qos: 0 });

          const late = await c.mqtt({ protocolVersion: version });
          await late.client.subscribeAsync([kept, notKept], { qos: 1 });
          await eventually(() => late.messages.length >= 1, 'the retained will');
          await settle(300);
          expect(late.messages.map((m) => [m.topic, m.payload, m.retain])).toEqual([[kept, 'kept', true]]);
        },
      );
    });
  }

  describe(`${doors.main.name}, MQTT 5.0: wills`, () => {
    it('[MQTT-3.1.2-8] DISCONNECT with reason 0x04 publishes the will, [MQTT-3.1.3-10] its properties passed on, user properties in order', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('will-04');
      const seen = await watch(c, 5, topic);
      const properties = {
        payloadFormatIndicator: true,
        contentType: 'text/plain',
        responseTopic: `${topic}/reply`,
        correlationData: Buffer.from([1, 2, 3]),
        userProperties: { first: ['1', '2'], second: 'b' },
      };
      const { raw } = await c.rawConnected(5, { will: { topic, payload: Buffer.from('bye'), qos: 1, retain: false, properties } });
      await disconnect(raw, { reasonCode: 0x04 });
      await eventually(() => seen.length === 1, 'the will');
      expect(seen[0]).toMatchObject({ topic, payload: 'bye', qos: 1 });
      expect(seen[0]!.properties).toMatchObject(properties);
      expect(Object.keys(seen[0]!.properties.userProperties!)).toEqual(['first', 'second']);
    });

    it('(MQTT 5.0 3.1.3.2.2) the Will Delay Interval delays the will', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('will-delay');
      const seen = await watch(c, 5, topic);
      const { raw } = await c.rawConnected(5, {
        properties: { sessionExpiryInterval: 60 },
        will: { topic, payload: Buffer.from('late'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
      });
      const closedAt = Date.now();
      raw.close();
      await settle(500);
      expect(seen).toEqual([]);
      await eventually(() => seen.length === 1, 'the delayed will', 5_000);
      expect(Date.now() - closedAt).toBeGreaterThanOrEqual(1_000);
      expect(seen[0]).toMatchObject({ payload: 'late' });
    });

    it('[MQTT-3.1.3-9] a new connection to the session before the Will Delay Interval passes: no will', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('will-cancel');
      const clientId = unique('will-cancel');
      const seen = await watch(c, 5, topic);
      const { raw } = await c.rawConnected(5, {
        clientId,
        clean: false,
        properties: { sessionExpiryInterval: 60 },
        will: { topic, payload: Buffer.from('never'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
      });
      raw.close();
      await raw.waitClosed();
      const back = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(back.connack.sessionPresent).toBe(true);
      // past the delay, and past the sweeper's next run
      await settle(1_000);
      await expectNoWill(c, 5, topic, seen);
    });

    it('[MQTT-3.1.2-8] a will whose delay outlasts the session is published when the session ends', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('will-session-end');
      const seen = await watch(c, 5, topic);
      const { raw } = await c.rawConnected(5, {
        properties: { sessionExpiryInterval: 1 },
        will: { topic, payload: Buffer.from('session over'), qos: 1, retain: false, properties: { willDelayInterval: 300 } },
      });
      const closedAt = Date.now();
      raw.close();
      await eventually(() => seen.length === 1, 'the will at the end of the session', 5_000);
      expect(Date.now() - closedAt).toBeGreaterThanOrEqual(1_000);
    });
  });
}
