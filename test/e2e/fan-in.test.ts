/**
 * Fan-in: many publishers delivering QoS 1 to one persistent subscriber at the same moment. The
 * deliveries' packet ids and in-flight room are claimed with single-item updates of the
 * subscriber's session (no read, no transaction), so concurrent handlers never fail each other:
 * the subscriber gets every message, each publisher's in order, and is never disconnected. With a
 * small Receive Maximum the overflow queues and drains as the subscriber acknowledges.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually, type ReceivedMessage } from '../support/clients';
import { useHarness } from '../support/harness';

const PUBLISHERS = 50;
const EACH = 4;
const harness = useHarness();
const clients: MqttClient[] = [];
afterAll(async () => endAll(...clients));

async function fanIn(name: string, receiveMaximum?: number): Promise<{ inbox: ReceivedMessage[]; closes: number; publishers: string[] }> {
  const topicRoot = `fanin/${name}/${process.pid}`;
  const subscriber = await connectClient(harness().mqttUrl, {
    protocolVersion: 5,
    clientId: `fanin-sub-${name}-${process.pid}`,
    clean: false,
    properties: { sessionExpiryInterval: 600, ...(receiveMaximum !== undefined ? { receiveMaximum } : {}) },
  });
  clients.push(subscriber);
  let closes = 0;
  subscriber.on('close', () => closes++);
  subscriber.on('disconnect', () => closes++);
  const inbox = collect(subscriber);
  await subscriber.subscribeAsync(`${topicRoot}/+`, { qos: 1 });

  // Connected a few at a time (a connect storm is another matter); then they all publish at once.
  const publishers: MqttClient[] = [];
  for (let p = 0; p < PUBLISHERS; p += 5) {
    const group = await Promise.all(
      Array.from({ length: Math.min(5, PUBLISHERS - p) }, (_, k) => connectClient(harness().mqttUrl, { protocolVersion: 4, clientId: `fanin-pub-${name}-${p + k}-${process.pid}` })),
    );
    publishers.push(...group);
    clients.push(...group);
  }
  // Every publisher sends its messages at once, all publishers together; each waits for its PUBACKs.
  await Promise.all(publishers.map((pub, p) => Promise.all(Array.from({ length: EACH }, (_, n) => pub.publishAsync(`${topicRoot}/${p}`, `${p}:${n}`, { qos: 1 })))));
  await eventually(() => new Set(inbox.map((m) => m.payload)).size === PUBLISHERS * EACH, `all ${PUBLISHERS * EACH} messages at the subscriber`, 60_000);
  return { inbox, closes, publishers: publishers.map((_, p) => String(p)) };
}

function expectAllInOrder(inbox: readonly ReceivedMessage[], publishers: readonly string[]): void {
  for (const p of publishers) {
    const mine = inbox.filter((m) => m.payload.startsWith(`${p}:`)).map((m) => m.payload);
    // [MQTT-4.6.0-6] each publisher's messages in the order it sent them (a resend would repeat one, never reorder)
    expect(mine, `publisher ${p}`).toEqual(Array.from({ length: EACH }, (_, n) => `${p}:${n}`));
  }
}

describe(`fan-in: ${PUBLISHERS} publishers, QoS 1 at once, into one persistent subscriber`, () => {
  it('the subscriber gets every message, each publisher in order, and is not disconnected', async () => {
    const { inbox, closes, publishers } = await fanIn('open');
    expect(closes).toBe(0);
    expectAllInOrder(inbox, publishers);
  }, 180_000);

  it('[MQTT-4.9.0-2] under a Receive Maximum of 10 the overflow queues and drains: every message arrives, each publisher in order, no disconnect', async () => {
    const { inbox, closes, publishers } = await fanIn('rm10', 10);
    expect(closes).toBe(0);
    expectAllInOrder(inbox, publishers);
  }, 180_000);
});
