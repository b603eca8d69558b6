/** A session's queue is bounded (MQTT_MAX_QUEUED_MESSAGES, MQTT_MAX_QUEUED_BYTES): what an offline subscriber gets back, as a client sees it. */
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness({ config: { maxQueuedMessages: 5, maxQueuedBytes: 10_000 } });

let counter = 0;
const id = (name: string): string => `${name}-${process.pid}-${++counter}`;

describe('queued messages per session', () => {
  it('an offline session keeps its first five QoS 1 messages, in order; the publisher gets every PUBACK; the rest are dropped for it', async () => {
    const clientId = id('offline');
    const topic = id('q');
    const options = { protocolVersion: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
    const subscriber = await connectClient(harness().mqttUrl, options);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    await subscriber.endAsync();

    const publisher = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const codes: number[] = [];
    for (let n = 1; n <= 10; n++) {
      const ack = await publisher.publishAsync(topic, `m${n}`, { qos: 1 });
      codes.push(ack && 'reasonCode' in ack ? (ack.reasonCode ?? 0) : 0);
    }
    expect(codes).toEqual(Array(10).fill(0));

    // Listening before CONNACK: the queue comes right after it.
    const back = mqtt.connect(harness().mqttUrl, { reconnectPeriod: 0, ...options });
    const got = collect(back);
    await eventually(() => got.length >= 5, `the five queued messages (got ${got.length})`);
    await settle(300);
    expect(got.map((m) => m.payload)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    // The queue is drained: new messages come through again.
    await publisher.publishAsync(topic, 'after', { qos: 1 });
    await eventually(() => got.length === 6, 'a message after the drain');
    await endAll(back, publisher);
  });

  it('an offline session keeps the first QoS 1 messages that fit its byte bound, in order; the publisher gets every PUBACK', async () => {
    const clientId = id('offline-bytes');
    const topic = id('qb');
    const options = { protocolVersion: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
    const subscriber = await connectClient(harness().mqttUrl, options);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    await subscriber.endAsync();

    // 3,000 bytes each with the topic: three fit in 10,000, the fourth would pass it.
    const publisher = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const body = (n: number): string => `${n}`.padEnd(3000 - Buffer.byteLength(topic), '.');
    for (let n = 1; n <= 5; n++) {
      const ack = await publisher.publishAsync(topic, body(n), { qos: 1 });
      expect(ack && 'reasonCode' in ack ? (ack.reasonCode ?? 0) : 0).toBe(0);
    }

    const back = mqtt.connect(harness().mqttUrl, { reconnectPeriod: 0, ...options });
    const got = collect(back);
    await eventually(() => got.length >= 3, `the three queued messages (got ${got.length})`);
    await settle(300);
    expect(got.map((m) => m.payload)).toEqual([body(1), body(2), body(3)]);
    await endAll(back, publisher);
  });
});
