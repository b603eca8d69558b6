/** The configurable limits, each with the reason code its packet type defines, seen by real clients. */
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import mqtt, { type IConnackPacket, type IClientOptions, type MqttClient } from 'mqtt';
import { collect, connectClient, endAll, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness({
  maximumPacketSize: 4096,
  config: {
    maxTopicLength: 64,
    maxTopicLevels: 4,
    maxSubscriptionsPerClient: 3,
    maxClientIdLength: 32,
    maxSessionExpiry: 1,
    maxRetainedReplay: 3,
    publishRate: { count: 10, perSeconds: 60 },
    connectRate: { count: 3, perSeconds: 60 },
  },
});

let counter = 0;
const id = (name: string): string => `${name}-${process.pid}-${++counter}`;

async function rawConnect(version: 4 | 5, fields: Partial<IConnectPacket> = {}): Promise<{ raw: RawConnection; code: number }> {
  const raw = await RawConnection.tcp(harness().mqttPort, version);
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 30, clientId: id('lim'), ...fields } as IConnectPacket);
  const connack = (await raw.next('connack')) as { reasonCode?: number; returnCode?: number };
  return { raw, code: (version === 5 ? connack.reasonCode : connack.returnCode) ?? 0 };
}

/** Rate limits count in fixed windows: start a burst well inside one, so it is not split across two. */
async function awayFromWindowEdge(perSeconds: number): Promise<void> {
  const intoWindow = Date.now() % (perSeconds * 1000);
  if (intoWindow > perSeconds * 1000 - 5000) await settle(perSeconds * 1000 - intoWindow + 100);
}

let watcher: MqttClient;
beforeAll(async () => {
  watcher = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
});
afterAll(() => endAll(watcher));

describe('topic length and levels', () => {
  it('5.0: a PUBLISH over the limits gets PUBACK 0x90 and is not delivered; 3.1.1: acknowledged, not delivered', async () => {
    const root = id('t');
    const seen = collect(watcher);
    await watcher.subscribeAsync(`${root}/#`, { qos: 1 });
    const tooDeep = `${root}/a/b/c/d`;
    const tooLong = `${root}/${'x'.repeat(64)}`;
    const { raw, code } = await rawConnect(5);
    expect(code).toBe(0);
    raw.send(
      { cmd: 'publish', topic: tooDeep, payload: Buffer.from('1'), qos: 1, dup: false, retain: false, messageId: 1 },
      { cmd: 'publish', topic: tooLong, payload: Buffer.from('2'), qos: 1, dup: false, retain: false, messageId: 2 },
      { cmd: 'publish', topic: `${root}/ok`, payload: Buffer.from('3'), qos: 1, dup: false, retain: false, messageId: 3 },
    );
    expect(await raw.next('puback')).toMatchObject({ messageId: 1, reasonCode: 0x90 });
    expect(await raw.next('puback')).toMatchObject({ messageId: 2, reasonCode: 0x90 });
    expect(await raw.next('puback')).toMatchObject({ messageId: 3, reasonCode: 0 });
    raw.close();
    const old = await connectClient(harness().mqttUrl, { protocolVersion: 4 });
    await old.publishAsync(tooDeep, '4', { qos: 1 });
    await old.publishAsync(`${root}/ok`, '5', { qos: 1 });
    await eventually(() => seen.filter((m) => m.topic.startsWith(root)).length === 2, 'the two messages within the limits');
    await settle(200);
    expect(seen.filter((m) => m.topic.startsWith(root)).map((m) => m.payload)).toEqual(['3', '5']);
    await endAll(old);
  });

  it('SUBSCRIBE: a filter over the limits gets 0x8F Topic Filter invalid (5.0) / 0x80 (3.1.1)', async () => {
    for (const [version, refused] of [[5, 0x8f], [4, 0x80]] as const) {
      const { raw } = await rawConnect(version);
      raw.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'a/b/c/d/e', qos: 0 }, { topic: `a/${'y'.repeat(70)}`, qos: 0 }, { topic: 'a/+/c/#', qos: 1 }] } as Packet);
      expect(await raw.next('suback')).toMatchObject({ granted: [refused, refused, 1] });
      raw.close();
    }
  });
});

describe('subscriptions per client', () => {
  it('5.0: beyond the quota a filter gets 0x97 Quota exceeded; replacing an existing one is free; unsubscribing makes room', async () => {
    const { raw } = await rawConnect(5);
    const subscribe = (messageId: number, topics: string[]): void =>
      raw.send({ cmd: 'subscribe', messageId, subscriptions: topics.map((topic) => ({ topic, qos: 0 })) } as Packet);
    subscribe(1, ['q/1', 'q/2']);
    expect(await raw.next('suback')).toMatchObject({ granted: [0, 0] });
    subscribe(2, ['q/3', 'q/4', 'q/1']);
    expect(await raw.next('suback')).toMatchObject({ granted: [0, 0x97, 0] });
    raw.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['q/2'] } as Packet);
    await raw.next('unsuback');
    subscribe(4, ['q/4']);
    expect(await raw.next('suback')).toMatchObject({ granted: [0] });
    raw.close();
  });

  it('3.1.1: beyond the quota a filter gets 0x80', async () => {
    const { raw } = await rawConnect(4);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: ['a', 'b', 'c', 'd'].map((topic) => ({ topic, qos: 1 })) } as Packet);
    expect(await raw.next('suback')).toMatchObject({ granted: [1, 1, 1, 0x80] });
    raw.close();
  });
});

/** MQTT.js connected, with the CONNACK it got. */
async function connectedWithConnack(options: IClientOptions): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  const client = mqtt.connect(harness().mqttUrl, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  return { client, connack };
}

describe('session expiry', () => {
  it('5.0: a client asking for more than the maximum is told the maximum in CONNACK (MQTT 5.0 3.2.2.3.2), and its session ends after it', async () => {
    const clientId = id('long');
    const first = await connectedWithConnack({ protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 3600 } });
    expect(first.connack.properties?.sessionExpiryInterval).toBe(1);
    await first.client.subscribeAsync(id('kept'), { qos: 1 });
    await first.client.endAsync();
    // past the 1 s maximum, whole seconds included
    await settle(2_100);
    const again = await connectedWithConnack({ protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 3600 } });
    expect(again.connack.sessionPresent).toBe(false);
    await again.client.endAsync();
  });

  it('5.0: a client asking for no more than the maximum gets no Session Expiry Interval in CONNACK', async () => {
    const { client, connack } = await connectedWithConnack({ protocolVersion: 5, clientId: id('short'), clean: false, properties: { sessionExpiryInterval: 1 } });
    expect(connack.properties?.sessionExpiryInterval).toBeUndefined();
    await client.endAsync();
  });

  it('3.1.1: a Clean Session 0 session is kept for the maximum, then ends', async () => {
    const clientId = id('old');
    const first = await connectedWithConnack({ protocolVersion: 4, clientId, clean: false });
    await first.client.subscribeAsync(id('kept'), { qos: 1 });
    await first.client.endAsync();
    const soon = await connectedWithConnack({ protocolVersion: 4, clientId, clean: false });
    expect(soon.connack.sessionPresent).toBe(true);
    await soon.client.endAsync();
    await settle(2_100);
    const later = await connectedWithConnack({ protocolVersion: 4, clientId, clean: false });
    expect(later.connack.sessionPresent).toBe(false);
    await later.client.endAsync();
  });
});

describe('retained replay', () => {
  it('a SUBSCRIBE replays at most the bound of retained messages below its wildcards; an exact filter still gets its own', async () => {
    const root = id('ret');
    const publisher = await connectClient(harness().mqttUrl, { protocolVersion: 5, clientId: id('ret-pub') });
    for (let n = 1; n <= 5; n++) await publisher.publishAsync(`${root}/${n}`, `r${n}`, { qos: 1, retain: true });
    const subscriber = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const got = collect(subscriber);
    await subscriber.subscribeAsync(`${root}/#`, { qos: 1 });
    await eventually(() => got.length >= 3, 'the bounded replay');
    await settle(300);
    expect(got.length).toBe(3);
    expect(got.every((m) => m.topic.startsWith(`${root}/`))).toBe(true);
    await subscriber.subscribeAsync(`${root}/5`, { qos: 1 });
    await eventually(() => got.some((m) => m.payload === 'r5' && got.length === 4), 'the exact topic replayed');
    // clear what this test retained
    for (let n = 1; n <= 5; n++) await publisher.publishAsync(`${root}/${n}`, '', { qos: 1, retain: true });
    await endAll(publisher, subscriber);
  });
});

describe('client identifiers and connection attempts', () => {
  it('[MQTT-3.1.3-5] a client id over the limit is refused: 5.0 CONNACK 0x85, 3.1.1 CONNACK 2', async () => {
    for (const [version, refused] of [[5, 0x85], [4, 2]] as const) {
      const { raw, code } = await rawConnect(version, { clientId: 'c'.repeat(33) });
      expect(code).toBe(refused);
      await raw.waitClosed();
    }
  });

  it('reconnecting one client id faster than the rate is refused: 5.0 CONNACK 0x9F Connection rate exceeded, 3.1.1 CONNACK 3', async () => {
    // A clean start (its count in the transaction that creates the session) and a resumed session (counted on its own first).
    for (const [version, refused, clean] of [[5, 0x9f, true], [4, 3, true], [5, 0x9f, false], [4, 3, false]] as const) {
      const clientId = id('flap');
      await awayFromWindowEdge(60);
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) {
        const { raw, code } = await rawConnect(version, { clientId, clean, ...(version === 5 && !clean ? { properties: { sessionExpiryInterval: 60 } } : {}) });
        codes.push(code);
        raw.close();
      }
      expect(codes).toEqual([0, 0, 0, refused]);
      // Another client id is not affected.
      expect((await rawConnect(version)).code).toBe(0);
    }
  });
});

describe('publish rate', () => {
  for (const version of [5, 4] as const) {
    it(`${version === 5 ? '5.0: DISCONNECT 0x96 Message rate too high' : '3.1.1: the connection closes'} once a client publishes faster than the rate`, async () => {
      const topic = id('rate');
      const seen = collect(watcher);
      await watcher.subscribeAsync(topic, { qos: 0 });
      await awayFromWindowEdge(60);
      const { raw } = await rawConnect(version);
      for (let i = 0; i < 12; i++) {
        raw.send({ cmd: 'publish', topic, payload: Buffer.from(String(i)), qos: 0, dup: false, retain: false } as Packet);
        await settle(20);
      }
      await raw.waitClosed();
      const disconnect = raw.packets.find((p) => p.cmd === 'disconnect');
      if (version === 5) expect(disconnect).toMatchObject({ reasonCode: 0x96 });
      else expect(disconnect).toBeUndefined();
      await settle(200);
      const delivered = seen.filter((m) => m.topic === topic).length;
      expect(delivered).toBeLessThanOrEqual(10);
      expect(delivered).toBeGreaterThan(0);
    });
  }
});

describe('maximum packet size on the API Gateway door (which frames nothing itself)', () => {
  it('5.0: a packet over the limit gets DISCONNECT 0x95 Packet too large, then the connection closes', async () => {
    const ws = new WebSocket(harness().apigwUrl, 'mqtt');
    const packets: Packet[] = [];
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (packet: Packet) => packets.push(packet));
    ws.on('message', (data) => parser.parse(Buffer.from(data.toString(), 'base64')));
    let closed = false;
    ws.on('close', () => (closed = true));
    await new Promise((resolve) => ws.once('open', resolve));
    const send = (packet: Packet): void => void ws.send(mqttPacket.generate(packet, { protocolVersion: 5 }).toString('base64'));
    send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: id('big') } as Packet);
    await eventually(() => packets.some((p) => p.cmd === 'connack'), 'CONNACK');
    send({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(5000), qos: 0, dup: false, retain: false });
    await eventually(() => closed, 'the door to close the connection');
    expect(packets.find((p) => p.cmd === 'disconnect')).toMatchObject({ reasonCode: 0x95 });
  });
});
