/**
 * A subscriber that stops reading while 200 messages of 256 KB are published to it is
 * disconnected; the listener never holds more than its outbound limit for it (the bounded
 * figure: the peak of any connection's unread bytes, from the listener's stats), and a bystander
 * subscribed to another topic keeps receiving what is published during and after. Over the
 * listener's TCP door, its WebSocket door and its TLS door (reset through the TCP socket under
 * the TLS), through the whole broker.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { MqttClient } from 'mqtt';
import { defaultListenerLimits } from '../../shared/listener/listener';
import { collect, connectClient, endAll, eventually, type ReceivedMessage } from '../support/clients';
import { useHarness } from '../support/harness';

const MESSAGES = 200;
const PAYLOAD = Buffer.alloc(256 * 1000, 0x61);
const MAX_OUTBOUND = defaultListenerLimits.maxOutboundBytes;
const harness = useHarness({ listener: { maxOutboundBytes: MAX_OUTBOUND }, tls: { port: 0 } });

/** A subscriber on a raw socket, so the test decides when it reads: it stops after its SUBACK. */
interface StoppedReader {
  received: number;
  closed: boolean;
  resume(): void;
}

async function subscribeThenStopReading(door: 'tcp' | 'tls' | 'websocket', topic: string): Promise<StoppedReader> {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: Packet[] = [];
  parser.on('packet', (packet: Packet) => packets.push(packet));
  const reader: StoppedReader & { pause(): void; write(packet: Packet): void } = {
    received: 0,
    closed: false,
    resume: () => undefined,
    pause: () => undefined,
    write: () => undefined,
  };
  const onBytes = (bytes: Buffer): void => {
    reader.received += bytes.length;
    if (packets.length < 2) parser.parse(bytes); // CONNACK and SUBACK; the rest is only counted
  };
  if (door !== 'websocket') {
    const socket =
      door === 'tcp'
        ? net.connect(harness().mqttPort, '127.0.0.1')
        : tls.connect({ host: '127.0.0.1', port: harness().mqttsPort!, servername: 'localhost', ca: harness().tlsCertificate! });
    socket.on('data', onBytes);
    socket.on('error', () => undefined); // reset by the listener
    socket.on('close', () => (reader.closed = true));
    await new Promise((resolve) => socket.once(door === 'tcp' ? 'connect' : 'secureConnect', resolve));
    Object.assign(reader, { pause: () => socket.pause(), resume: () => socket.resume(), write: (p: Packet) => socket.write(mqttPacket.generate(p)) });
  } else {
    const ws = new WebSocket(harness().wsUrl, 'mqtt');
    ws.on('message', (data: Buffer) => onBytes(data));
    ws.on('error', () => undefined);
    ws.on('close', () => (reader.closed = true));
    await new Promise((resolve) => ws.once('open', resolve));
    Object.assign(reader, { pause: () => ws.pause(), resume: () => ws.resume(), write: (p: Packet) => ws.send(mqttPacket.generate(p)) });
  }
  reader.write({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: `slow-${door}-${process.pid}` });
  await eventually(() => packets.some((p) => p.cmd === 'connack'), 'CONNACK');
  reader.write({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
  await eventually(() => packets.some((p) => p.cmd === 'suback'), 'SUBACK');
  reader.pause();
  return reader;
}

let publisher: MqttClient;
let bystander: MqttClient;
let bystanderSeen: ReceivedMessage[];

beforeAll(async () => {
  publisher = await connectClient(harness().mqttUrl, { clientId: `publisher-${process.pid}` });
  bystander = await connectClient(harness().mqttUrl, { clientId: `bystander-${process.pid}` });
  bystanderSeen = collect(bystander);
});
afterAll(() => endAll(publisher, bystander));

describe('a subscriber that stops reading', () => {
  for (const door of ['tcp', 'tls', 'websocket'] as const) {
    it(`${door}: is disconnected while ${MESSAGES} messages of 256 KB are published to it; the listener holds at most its limit for it; a bystander keeps being served`, async () => {
      const bigTopic = `big/${door}`;
      const bystanderTopic = `bystander/${door}`;
      await bystander.subscribeAsync(bystanderTopic, { qos: 1 });
      const before = harness().listenerStats();
      const slow = await subscribeThenStopReading(door, bigTopic);

      const bystanderPayloads: string[] = [];
      const toBystander = async (label: string): Promise<void> => {
        bystanderPayloads.push(label);
        await publisher.publishAsync(bystanderTopic, label, { qos: 1 });
      };
      const published: Array<Promise<unknown>> = [];
      for (let i = 0; i < MESSAGES; i++) {
        published.push(publisher.publishAsync(bigTopic, PAYLOAD, { qos: 0 }));
        if (i % 50 === 0) published.push(toBystander(`during ${i}`));
      }
      await Promise.all(published);

      await eventually(() => harness().listenerStats().slowReadersClosed > before.slowReadersClosed, 'the listener to close the slow reader', 20_000);
      await toBystander('after');
      await eventually(() => bystanderPayloads.every((p) => bystanderSeen.some((m) => m.topic === bystanderTopic && m.payload === p)), 'every bystander message', 20_000);
      expect(bystander.connected).toBe(true);

      const stats = harness().listenerStats();
      expect(stats.slowReadersClosed).toBe(before.slowReadersClosed + 1);
      expect(stats.peakOutboundBytes).toBeLessThanOrEqual(MAX_OUTBOUND);

      // When it reads again, the slow subscriber finds its connection gone, far short of 200 messages.
      slow.resume();
      await eventually(() => slow.closed, 'the slow subscriber to see its connection closed');
      expect(slow.received).toBeLessThan(MESSAGES * PAYLOAD.length);
    });
  }
});
