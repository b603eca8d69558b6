/**
 * A fan-out larger than one handler's part is split across fan-out workers (in-process here,
 * through the same JSON a Lambda invoke carries). What subscribers observe must not change:
 * every one receives the message once, at its QoS, with its properties, before the publisher's
 * acknowledgement.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually, RawConnection, settle, type ReceivedMessage } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness({ broker: { fanoutPartSize: 3 } });
// The default part size (250) and AWS's limits: a 60 KB message to 300 subscribers is two parts,
// each under Lambda's 6 MB payload only because the payload travels once per part.
const wide = useHarness();
const clients: MqttClient[] = [];
afterAll(async () => endAll(...clients));

describe('fan-out split across workers', () => {
  it('[MQTT-3.3.4-1] every one of 11 subscribers (4 parts) receives each message once, QoS and properties intact', async () => {
    const topic = `fanout/${process.pid}`;
    const inboxes: ReceivedMessage[][] = [];
    for (let i = 0; i < 11; i++) {
      const sub = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
      clients.push(sub);
      inboxes.push(collect(sub));
      await sub.subscribeAsync(topic, { qos: i % 2 === 0 ? 1 : 0 });
    }
    const pub = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    clients.push(pub);
    const properties = { contentType: 'text/plain', correlationData: Buffer.from([1, 2, 3]), userProperties: { k: 'v' } };
    const ack = await pub.publishAsync(topic, 'one', { qos: 1, properties });
    // PUBACK 0x00 (not 0x10): the subscribers matched
    expect((ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0).toBe(0);
    await pub.publishAsync(topic, 'two', { qos: 1 });
    await eventually(() => inboxes.every((inbox) => inbox.length === 2), 'both messages at every subscriber');
    await settle(200);
    inboxes.forEach((inbox, i) => {
      expect(inbox.map((m) => m.payload)).toEqual(['one', 'two']);
      expect(inbox[0]).toMatchObject({ qos: i % 2 === 0 ? 1 : 0 });
      expect(inbox[0]!.properties).toMatchObject({ contentType: 'text/plain', correlationData: Buffer.from([1, 2, 3]), userProperties: { k: 'v' } });
    });
  });

  it('[MQTT-4.6.0-6] a run of PUBLISHes split across workers keeps each subscriber\'s order', async () => {
    const topic = `fanout-order/${process.pid}`;
    const inboxes: ReceivedMessage[][] = [];
    for (let i = 0; i < 4; i++) {
      const sub = await connectClient(harness().mqttUrl, { protocolVersion: 4 });
      clients.push(sub);
      inboxes.push(collect(sub));
      await sub.subscribeAsync(topic, { qos: 1 });
    }
    // All in one write, so the listener hands them to one invocation: one run of 12 PUBLISHes,
    // 48 deliveries, parts of 3.
    const raw = await RawConnection.tcp(harness().mqttPort, 4);
    try {
      raw.send({ cmd: 'connect', clientId: `fanout-order-${process.pid}`, protocolVersion: 4, clean: true, keepalive: 30 });
      await raw.next('connack');
      raw.send(
        ...Array.from({ length: 12 }, (_, i) => ({ cmd: 'publish' as const, topic, payload: Buffer.from(`m${i}`), qos: 1 as const, messageId: i + 1, dup: false, retain: false })),
      );
      await eventually(() => inboxes.every((inbox) => inbox.length === 12), 'twelve messages at every subscriber');
      const expected = Array.from({ length: 12 }, (_, i) => `m${i}`);
      for (const inbox of inboxes) expect(inbox.map((m) => m.payload)).toEqual(expected);
    } finally {
      raw.close();
    }
  });

  it('a 60 KB message reaches every one of 300 subscribers on the listener door, once, and the publisher is acknowledged', { timeout: 120_000 }, async () => {
    const topic = `fanout-wide/${process.pid}`;
    const inboxes: ReceivedMessage[][] = [];
    for (let batch = 0; batch < 6; batch++) {
      const subs = await Promise.all(Array.from({ length: 50 }, () => connectClient(wide().mqttUrl, { protocolVersion: 4 })));
      clients.push(...subs);
      await Promise.all(subs.map((sub) => sub.subscribeAsync(topic, { qos: 1 })));
      inboxes.push(...subs.map(collect));
    }
    const pub = await connectClient(wide().mqttUrl, { protocolVersion: 5 });
    clients.push(pub);
    const payload = Buffer.alloc(60 * 1024, 'x');
    const ack = await pub.publishAsync(topic, payload, { qos: 1 });
    expect((ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0).toBe(0);
    await eventually(() => inboxes.every((inbox) => inbox.length >= 1), `the message at all 300 (${inboxes.filter((i) => i.length > 0).length} so far)`, 60_000);
    await settle(300);
    expect(inboxes.every((inbox) => inbox.length === 1 && inbox[0]!.payload.length === payload.length)).toBe(true);
  });
});
