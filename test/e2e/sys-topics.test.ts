/**
 * $SYS/broker/...: the broker's figures, retained, in Mosquitto's names, published every few
 * seconds by the harness (the sweeper, every minute, in the cloud); readable under an ACL only
 * with a rule for them; never written by a client; and counted without a DynamoDB call per
 * message.
 */
import type { Packet } from 'mqtt-packet';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../shared/security/password';
import { parseAcl } from '../../shared/security/acl';
import { collect, connectClient, endAll, eventually, RawConnection, settle, type ReceivedMessage } from '../support/clients';
import { useHarness } from '../support/harness';

// An ACL is configured: anonymous clients may use public/# and nothing else; `watcher` may also read $SYS.
// The figures are published at the harness's default interval, as `npm start` does.
const harness = useHarness({ security: { allowAnonymous: true, acl: parseAcl('readwrite public/#') }, consolePort: 0 });
/** The harness's default sysIntervalMs. */
const SYS_INTERVAL_MS = 5_000;

beforeAll(async () => {
  const users = [
    { username: 'watcher', acl: ['read $SYS/#'] },
    // Rules that grant everything, $SYS included: still no publishing there.
    { username: 'admin', acl: ['readwrite #', 'readwrite $SYS/#'] },
  ];
  await Promise.all(users.map(async (user) => harness().securityStore.putUser({ ...user, passwordHash: await hashPassword(`${user.username}-password`, { logN: 12, r: 8, p: 1 }) })));
});

const latest = (messages: readonly ReceivedMessage[], topic: string): string | undefined => messages.filter((m) => m.topic === topic).at(-1)?.payload;

describe('$SYS/broker/ topics', () => {
  it('a subscriber to $SYS/broker/clients/connected gets a number within 20 s, retained; messages/received grows after publishes', async () => {
    const watcher = await connectClient(harness().mqttUrl, { username: 'watcher', password: 'watcher-password', clientId: 'sys-watcher' });
    const publisher = await connectClient(harness().mqttUrl, { clientId: 'sys-publisher' });
    try {
      const seen = collect(watcher);
      await watcher.subscribeAsync(['$SYS/broker/clients/connected', '$SYS/broker/messages/received', '$SYS/broker/publish/messages/received', '$SYS/broker/uptime']);
      // Retained from an earlier run at first, then the two clients here once their connects are flushed.
      await eventually(() => Number(latest(seen, '$SYS/broker/clients/connected') ?? -1) >= 2, 'a $SYS/broker/clients/connected message counting both clients', 20_000);
      await eventually(() => latest(seen, '$SYS/broker/uptime') !== undefined, 'a $SYS/broker/uptime message', 20_000);
      expect(latest(seen, '$SYS/broker/uptime')).toMatch(/^\d+ seconds$/);

      await eventually(() => latest(seen, '$SYS/broker/publish/messages/received') !== undefined, 'publish/messages/received', 20_000);
      const before = Number(latest(seen, '$SYS/broker/publish/messages/received'));
      const packetsBefore = Number(latest(seen, '$SYS/broker/messages/received'));
      for (let n = 0; n < 5; n++) await publisher.publishAsync('public/readings', `reading ${n}`, { qos: 1 });
      await eventually(() => Number(latest(seen, '$SYS/broker/publish/messages/received')) >= before + 5, 'publish/messages/received to grow by 5', 20_000);
      expect(Number(latest(seen, '$SYS/broker/messages/received'))).toBeGreaterThanOrEqual(packetsBefore + 5);

      // Retained: a client that subscribes later gets the last figures at once.
      const late = await connectClient(harness().mqttUrl, { username: 'watcher', password: 'watcher-password', clientId: 'sys-late' });
      try {
        const replay = collect(late);
        await late.subscribeAsync('$SYS/broker/#');
        await eventually(() => replay.some((m) => m.topic === '$SYS/broker/retained messages/count' && m.retain), 'the retained figures', 5_000);
        const topics = new Set(replay.map((m) => m.topic));
        for (const topic of ['$SYS/broker/messages/sent', '$SYS/broker/subscriptions/count', '$SYS/broker/clients/connected']) expect(topics).toContain(topic);
        expect(Number(latest(replay, '$SYS/broker/subscriptions/count'))).toBeGreaterThanOrEqual(4);
      } finally {
        await endAll(late);
      }
    } finally {
      await endAll(watcher, publisher);
    }
  });

  it('[MQTT-3.9.3-1] under an ACL, a client without a rule for $SYS is refused $SYS/# (5.0 0x87, 3.1.1 0x80)', async () => {
    for (const [version, refused] of [[5, 0x87], [4, 0x80]] as const) {
      const raw = await RawConnection.tcp(harness().mqttPort, version);
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 30, clientId: `no-sys-${version}` } as Packet);
      await raw.next('connack');
      raw.send({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: '$SYS/#', qos: 0 }, { topic: '$SYS/broker/clients/connected', qos: 0 }, { topic: 'public/#', qos: 0 }] } as Packet);
      expect(await raw.next('suback'), `version ${version}`).toMatchObject({ messageId: 7, granted: [refused, refused, 0] });
      raw.close();
    }
  });

  it('[MQTT-4.7.2-1] # does not carry $SYS messages, and no client may publish to $SYS (5.0 PUBACK 0x87)', async () => {
    const watcher = await connectClient(harness().mqttUrl, { username: 'admin', password: 'admin-password', clientId: 'sys-hash', protocolVersion: 5 });
    const forger = await connectClient(harness().mqttUrl, { username: 'admin', password: 'admin-password', clientId: 'sys-forger', protocolVersion: 5 });
    try {
      const seen = collect(watcher);
      await watcher.subscribeAsync(['#', '$SYS/broker/clients/connected']);
      await expect(forger.publishAsync('$SYS/broker/clients/connected', '1000000', { qos: 1 })).rejects.toThrow(/Not authorized|135/);
      await harness().publishSys();
      await settle(500);
      expect(seen.filter((m) => m.topic.startsWith('$SYS/') && m.topic !== '$SYS/broker/clients/connected')).toEqual([]);
      expect(seen.map((m) => m.payload)).not.toContain('1000000');
    } finally {
      await endAll(watcher, forger);
    }
  });

  it('[MQTT-3.1.4-2] nor may a will: a CONNECT whose will topic is under $SYS is refused (5.0 0x87, 3.1.1 return code 5), whatever the rules', async () => {
    for (const [version, refused] of [[5, { reasonCode: 0x87 }], [4, { returnCode: 5 }]] as const) {
      const raw = await RawConnection.tcp(harness().mqttPort, version);
      raw.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: version,
        clean: true,
        keepalive: 30,
        clientId: `sys-will-${version}`,
        username: 'admin',
        password: Buffer.from('admin-password'),
        will: { topic: '$SYS/broker/clients/connected', payload: Buffer.from('0'), qos: 0, retain: true },
      } as Packet);
      expect(await raw.next('connack'), `version ${version}`).toMatchObject(refused);
      raw.close();
    }
  });

  it('the web console serves the same figures, and what this process has not flushed yet', async () => {
    const client = await connectClient(harness().mqttUrl, { clientId: 'sys-console' });
    try {
      await harness().publishSys();
      const stats = (await (await fetch(`${harness().consoleUrl}/stats.json`)).json()) as { figures: Array<{ topic: string; payload: string }>; pending: Record<string, number> };
      const figures = Object.fromEntries(stats.figures.map((f) => [f.topic, f.payload]));
      expect(Number(figures['$SYS/broker/clients/connected'])).toBeGreaterThanOrEqual(1);
      expect(figures['$SYS/broker/uptime']).toMatch(/^\d+ seconds$/);
      expect(typeof stats.pending).toBe('object');
    } finally {
      await endAll(client);
    }
  });

  it('publishing does not add DynamoDB calls per message: the counters cost calls per interval, not per message', async () => {
    const publisher = await connectClient(harness().mqttUrl, { clientId: 'sys-counted' });
    try {
      await harness().publishSys();
      const received = async () => (await harness().stats.store.totals()).counts.publishReceived;
      const before = await received();
      const calls = harness().stats.store.meter.snapshot().calls;
      const started = Date.now();
      for (let n = 0; n < 100; n++) await publisher.publishAsync('public/counted', `n ${n}`, { qos: 1 });
      const elapsed = Date.now() - started;
      // Each run of the publisher flushes once and reads the sums once; the handlers' own flushes come every 10 s.
      const runs = Math.ceil(elapsed / SYS_INTERVAL_MS) + 1;
      const made = harness().stats.store.meter.snapshot().calls - calls;
      expect(made).toBeLessThanOrEqual(2 * runs + Math.ceil(elapsed / 10_000) + 1);
      expect(made).toBeLessThan(100);
      await harness().publishSys();
      expect((await received()) - before).toBe(100);
    } finally {
      await endAll(publisher);
    }
  });
});
