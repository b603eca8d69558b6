/**
 * Hostile input closes only the connection that sent it, with the reason code where the version
 * has one (5.0: a DISCONNECT before closing, once CONNACK went out), and a well-behaved client
 * connected alongside keeps its service throughout. Raw sockets write the exact bytes.
 */
import type { MqttClient } from 'mqtt';
import type { Packet } from 'mqtt-packet';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually, RawConnection, type ReceivedMessage } from '../support/clients';
import { useHarness } from '../support/harness';

const CONNECT_TIMEOUT_MS = 1_000;
const MAX_PACKET = 4 * 1024;
const harness = useHarness({ maximumPacketSize: MAX_PACKET, connectTimeoutMs: CONNECT_TIMEOUT_MS });

/** A subscriber and a publisher that must keep working whatever the other tests do. */
let bystanderSub: MqttClient;
let bystanderPub: MqttClient;
let seen: ReceivedMessage[];
let sent = 0;
const bystanderTopic = `bystander/${process.pid}`;

beforeAll(async () => {
  bystanderSub = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
  seen = collect(bystanderSub);
  await bystanderSub.subscribeAsync(bystanderTopic, { qos: 1 });
  bystanderPub = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
});
afterAll(() => endAll(bystanderSub, bystanderPub));

async function bystanderStillServed(): Promise<void> {
  const payload = `still here ${++sent}`;
  await bystanderPub.publishAsync(bystanderTopic, payload, { qos: 1 });
  await eventually(() => seen.some((m) => m.payload === payload), `the bystander's message "${payload}"`);
  expect(bystanderSub.connected && bystanderPub.connected).toBe(true);
}

let counter = 0;
async function connected(version: 4 | 5): Promise<RawConnection> {
  const raw = await RawConnection.tcp(harness().mqttPort, version);
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 30, clientId: `hostile-${process.pid}-${++counter}` } as Packet);
  expect(await raw.next('connack')).toMatchObject({ cmd: 'connack' });
  return raw;
}

/** 5.0: the DISCONNECT carries `reasonCode` and the connection closes; 3.1.1: it just closes. */
async function expectClosed(raw: RawConnection, version: 4 | 5, reasonCode: number): Promise<void> {
  await raw.waitClosed();
  const disconnect = raw.packets.find((p) => p.cmd === 'disconnect');
  if (version === 5) expect(disconnect).toMatchObject({ cmd: 'disconnect', reasonCode });
  else expect(disconnect).toBeUndefined();
}

const publishBytes = (topic: Buffer): Buffer => Buffer.concat([Buffer.from([0x30, 2 + topic.length, 0, topic.length]), topic]);

describe('hostile input', () => {
  for (const version of [4, 5] as const) {
    const v = version === 5 ? '5.0' : '3.1.1';

    it(`[MQTT-1.5.5-1] ${v}: a Remaining Length of more than four bytes is malformed (0x81)`, async () => {
      const raw = await connected(version);
      raw.sendBytes(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
      await expectClosed(raw, version, 0x81);
      await bystanderStillServed();
    });

    it(`[MQTT-2.2.2-2] ${v}: reserved flag bits set are malformed (0x81): PUBREL, SUBSCRIBE, PINGREQ`, async () => {
      for (const bytes of [[0x60, 2, 0, 1], [0x80, 6, 0, 1, 0, 1, 0x61, 0], [0xc1, 0]]) {
        const raw = await connected(version);
        raw.sendBytes(Buffer.from(bytes));
        await expectClosed(raw, version, 0x81);
      }
      await bystanderStillServed();
    });

    it(`[MQTT-1.5.3-1] [MQTT-1.5.3-2] ${v}: ill-formed UTF-8, an encoded surrogate or U+0000 in a topic is malformed (0x81)`, async () => {
      for (const topic of [[0x61, 0xc3, 0x28], [0xed, 0xa0, 0x80], [0x61, 0x00, 0x62]]) {
        const raw = await connected(version);
        raw.sendBytes(publishBytes(Buffer.from(topic)));
        await expectClosed(raw, version, 0x81);
      }
      await bystanderStillServed();
    });

    it(`[MQTT-3.3.2-2] ${v}: a wildcard in a PUBLISH topic closes the connection (0x90 Topic Name invalid)`, async () => {
      for (const topic of ['a/+/b', 'a/#']) {
        const raw = await connected(version);
        raw.sendBytes(publishBytes(Buffer.from(topic)));
        await expectClosed(raw, version, 0x90);
      }
      await bystanderStillServed();
    });

    it(`[MQTT-3.1.0-2] ${v}: a second CONNECT is a protocol error (0x82)`, async () => {
      const raw = await connected(version);
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 30, clientId: 'again' } as Packet);
      await expectClosed(raw, version, 0x82);
      await bystanderStillServed();
    });

    it(`${v}: a packet over the Maximum Packet Size closes the connection (0x95 Packet too large), however slowly it comes`, async () => {
      const raw = await connected(version);
      // Only the header is sent: the listener refuses on the announced length, before buffering it.
      raw.sendBytes(Buffer.from([0x30, 0x80, 0x80, 0x01]));
      await expectClosed(raw, version, 0x95);
      await bystanderStillServed();
    });
  }

  it('[MQTT-3.1.0-1] a packet before CONNECT closes the connection, with no CONNACK', async () => {
    const raw = await RawConnection.tcp(harness().mqttPort, 5);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] } as Packet);
    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
    await bystanderStillServed();
  });

  it('a socket that never sends CONNECT is closed after the CONNECT deadline', async () => {
    const raw = await RawConnection.tcp(harness().mqttPort, 4);
    const opened = Date.now();
    await raw.waitClosed(CONNECT_TIMEOUT_MS * 5);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
    await bystanderStillServed();
  });

  it('a slowloris CONNECT (one byte at a time, never finished in time) is closed at the CONNECT deadline', async () => {
    const socket = net.connect(harness().mqttPort, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    const connect = Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 30, 0, 1, 0x61]);
    let sentBytes = 0;
    const trickle = setInterval(() => {
      if (closed || sentBytes >= connect.length - 1) return;
      socket.write(connect.subarray(sentBytes, ++sentBytes));
    }, 150);
    await eventually(() => closed, 'the listener to close the slow socket', CONNECT_TIMEOUT_MS * 5);
    clearInterval(trickle);
    expect(sentBytes).toBeLessThan(connect.length);
    await bystanderStillServed();
  });

  it('a flood of PUBLISH packets from one client does not stop another client being served', async () => {
    const raw = await connected(4);
    const flood = Buffer.concat(Array.from({ length: 2000 }, (_, i) => publishBytes(Buffer.from(`flood/${i % 10}`))));
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline && !raw.closed) {
      raw.sendBytes(flood);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await bystanderStillServed();
    }
    raw.close();
    await bystanderStillServed();
  });
});
