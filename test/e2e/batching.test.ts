/**
 * Batches across connections, through the whole broker with real clients: the listener hands the
 * packets of many connections to one invocation (a window long enough here that packets sent
 * together always share one), and the handler takes them in the order the listener received them.
 */
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const WINDOW_MS = 300;
const harness = useHarness({ listener: { batchWindowMs: WINDOW_MS } });
const url = (): string => harness().mqttUrl;
let run = 0;
const topicBase = (): string => `batching/${process.pid}/${++run}`;

describe('batches across connections', () => {
  it('a SUBSCRIBE that arrived before another client\'s PUBLISH, in the same invocation, is in effect for it', async () => {
    for (const qos of [0, 1] as const) {
      const topic = `${topicBase()}/news`;
      const subscriber = await connectClient(url(), { clientId: `batch-sub-${run}` });
      const publisher = await connectClient(url(), { clientId: `batch-pub-${run}` });
      const received = collect(subscriber);
      await settle(WINDOW_MS + 100); // the CONNECTs' batches are done
      const before = harness().listenerStats().batches;
      const suback = subscriber.subscribeAsync(topic, { qos });
      await settle(30); // the SUBSCRIBE is on the listener first, and its batch still waiting
      const puback = publisher.publishAsync(topic, `right after, QoS ${qos}`, { qos });
      await Promise.all([suback, puback]);
      await eventually(() => received.length === 1, `the message published right after the SUBSCRIBE (QoS ${qos})`);
      expect(received[0]).toMatchObject({ topic, payload: `right after, QoS ${qos}` });
      // Both connections' packets went in one invocation.
      const after = harness().listenerStats().batches;
      expect(after.invocations - before.invocations).toBe(1);
      expect(after.connections - before.connections).toBe(2);
      await endAll(subscriber, publisher);
    }
  });

  it('many clients publishing at once: every message arrives, each publisher\'s in order, the invocations carrying many connections', async () => {
    const base = topicBase();
    const PUBLISHERS = 20;
    const MESSAGES = 15;
    const subscriber = await connectClient(url(), { clientId: `fleet-sub-${run}` });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(`${base}/+/telemetry`, { qos: 1 });
    const publishers = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => connectClient(url(), { clientId: `fleet-dev-${run}-${i}` })));
    const before = harness().listenerStats().batches;
    await Promise.all(
      publishers.flatMap((publisher, i) =>
        Array.from({ length: MESSAGES }, (_, n) => publisher.publishAsync(`${base}/${i}/telemetry`, String(n), { qos: (n % 2) as 0 | 1 })),
      ),
    );
    await eventually(() => received.length >= PUBLISHERS * MESSAGES, 'every message', 30_000);
    await settle(300);
    expect(received).toHaveLength(PUBLISHERS * MESSAGES);
    for (let i = 0; i < PUBLISHERS; i++) {
      const mine = received.filter((m) => m.topic === `${base}/${i}/telemetry`).map((m) => Number(m.payload));
      expect(mine).toEqual(Array.from({ length: MESSAGES }, (_, n) => n));
    }
    const after = harness().listenerStats().batches;
    expect(after.connections - before.connections).toBeGreaterThan(after.invocations - before.invocations);
    await endAll(subscriber, ...publishers);
  });

  it('a connection whose packets break the protocol is closed; the others in the same invocation are served', async () => {
    const topic = `${topicBase()}/served`;
    const subscriber = await connectClient(url(), { clientId: `served-sub-${run}` });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const publisher = await connectClient(url(), { clientId: `served-pub-${run}` });
    const offender = await RawConnection.tcp(harness().mqttPort, 4);
    const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: `offender-${run}` });
    offender.sendBytes(connect);
    await eventually(() => offender.packets.some((p) => p.cmd === 'connack'), 'the offender\'s CONNACK');
    await settle(WINDOW_MS + 100);
    const before = harness().listenerStats().batches;
    // A second CONNECT is a protocol error [MQTT-3.1.0-2]; the publisher's PUBLISH shares its invocation.
    offender.sendBytes(connect);
    const puback = publisher.publishAsync(topic, 'unharmed', { qos: 1 });
    await puback;
    await eventually(() => offender.closed, 'the offender closed');
    await eventually(() => received.length === 1, 'the publisher\'s message');
    expect(received[0]).toMatchObject({ topic, payload: 'unharmed' });
    const after = harness().listenerStats().batches;
    expect(after.invocations - before.invocations).toBe(1);
    expect(after.connections - before.connections).toBe(2);
    expect(publisher.connected).toBe(true);
    await publisher.publishAsync(topic, 'still served', { qos: 1 });
    await eventually(() => received.length === 2, 'the next message');
    await endAll(subscriber, publisher);
  });
});
