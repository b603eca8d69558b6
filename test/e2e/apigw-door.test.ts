/**
 * The browser door through the API Gateway emulator, at the level of bytes: MQTT packets travel
 * base64-encoded in text frames, the AWS behaviours that break naive MQTT over WebSocket hold,
 * and no client is sent or may send more than the door carries. (Ordering of concurrent
 * `$default` invocations: apigw-ordering.test.ts.)
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { API_GATEWAY_INBOUND_PACKET_BYTES, API_GATEWAY_OUTBOUND_PACKET_BYTES } from '../../shared/gateway/door-limits';
import { collect, connectClient, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness();
/** A broker with MQTT_MAX_KEEPALIVE=2. */
const keepAliveHarness = useHarness({ broker: { maxKeepAlive: 2 } });

interface TextDoorClient {
  readonly ws: WebSocket;
  readonly packets: Packet[];
  readonly closeCode: () => number | undefined;
  send(packet: Packet): void;
}

async function openTextDoor(protocols: string | string[] = 'mqtt'): Promise<TextDoorClient> {
  const ws = new WebSocket(harness().apigwUrl, protocols);
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (packet: Packet) => packets.push(packet));
  let closeCode: number | undefined;
  ws.on('message', (data) => parser.parse(Buffer.from(data.toString(), 'base64')));
  ws.on('close', (code) => (closeCode = code));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    packets,
    closeCode: () => closeCode,
    send: (packet) => ws.send(mqttPacket.generate(packet, { protocolVersion: 4 }).toString('base64')),
  };
}

describe('API Gateway door (emulated)', () => {
  it('agrees the subprotocol $connect chose: "mqtt", or "mqttv3.1" for old clients', async () => {
    for (const offered of [['mqtt'], ['mqttv3.1'], ['foo', 'mqtt']]) {
      const door = await openTextDoor(offered);
      expect(door.ws.protocol).toBe(offered.includes('mqtt') ? 'mqtt' : 'mqttv3.1');
      door.ws.close();
    }
  });

  it('refuses the handshake with $connect\'s HTTP status when no MQTT subprotocol is offered', async () => {
    const ws = new WebSocket(harness().apigwUrl, ['chat']);
    const status = await new Promise<number | undefined>((resolve) => {
      ws.once('unexpected-response', (_request, response) => resolve(response.statusCode));
      ws.once('open', () => resolve(undefined));
      ws.once('error', () => undefined);
    });
    expect(status).toBe(400);
    ws.terminate();
  });

  it('carries base64 MQTT in text frames both ways: CONNECT, SUBSCRIBE, then a message from a device', async () => {
    const topic = `apigw/${Date.now()}`;
    const door = await openTextDoor();
    door.send({ cmd: 'connect', clientId: `browser-${process.pid}`, protocolVersion: 4, clean: true, keepalive: 60 });
    await eventually(() => door.packets.some((p) => p.cmd === 'connack'), 'CONNACK');
    door.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
    await eventually(() => door.packets.some((p) => p.cmd === 'suback'), 'SUBACK');

    const device = await connectClient(harness().mqttUrl);
    await device.publishAsync(topic, 'from a device', { qos: 1 });
    await eventually(() => door.packets.some((p) => p.cmd === 'publish'), 'the message');
    const publish = door.packets.find((p) => p.cmd === 'publish');
    expect(publish).toMatchObject({ topic, qos: 1 });
    expect((publish as { payload: Buffer }).payload.toString()).toBe('from a device');
    await device.endAsync();
    door.ws.close();
  });

  it('a device receives what a browser publishes', async () => {
    const topic = `apigw/up/${Date.now()}`;
    const device = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const got = collect(device);
    await device.subscribeAsync(topic, { qos: 1 });
    const door = await openTextDoor();
    door.send({ cmd: 'connect', clientId: `browser-up-${process.pid}`, protocolVersion: 4, clean: true, keepalive: 60 });
    await eventually(() => door.packets.some((p) => p.cmd === 'connack'), 'CONNACK');
    door.send({ cmd: 'publish', topic, payload: Buffer.from('from a browser'), qos: 1, messageId: 5, dup: false, retain: false });
    await eventually(() => door.packets.some((p) => p.cmd === 'puback'), 'PUBACK');
    await eventually(() => got.length === 1, 'the message at the device');
    expect(got[0]).toMatchObject({ topic, payload: 'from a browser', qos: 1 });
    await device.endAsync();
    door.ws.close();
  });

  it('closes with 1003 when a client sends a binary frame, as API Gateway does', async () => {
    const door = await openTextDoor();
    door.ws.send(mqttPacket.generate({ cmd: 'pingreq' }), { binary: true });
    await eventually(() => door.closeCode() !== undefined, 'the close');
    expect(door.closeCode()).toBe(1003);
  });

  it('[MQTT-3.2.2-15] 5.0: CONNACK announces the largest packet a browser can send in one 32 KB frame', async () => {
    const door = await RawConnection.apiGateway(harness().apigwUrl, 5);
    door.send({ cmd: 'connect', clientId: `limit-${process.pid}`, protocolVersion: 5, clean: true, keepalive: 60 });
    const connack = (await door.next('connack')) as { properties?: { maximumPacketSize?: number } };
    // 32 KB of text, less the sequence prefix, in base64: 24,564 bytes (the TCP door announces 256 KB)
    expect(API_GATEWAY_INBOUND_PACKET_BYTES).toBe(24_564);
    expect(connack.properties?.maximumPacketSize).toBe(API_GATEWAY_INBOUND_PACKET_BYTES);
    door.close();
  });

  it('a packet too large for one 32 KB frame closes the connection with 1009, as API Gateway does', async () => {
    const door = await RawConnection.apiGateway(harness().apigwUrl, 4);
    door.send({ cmd: 'connect', clientId: `toolarge-${process.pid}`, protocolVersion: 4, clean: true, keepalive: 60 });
    await door.next('connack');
    door.send({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(API_GATEWAY_INBOUND_PACKET_BYTES + 100), qos: 0, dup: false, retain: false });
    await door.waitClosed();
    expect(door.closeCode).toBe(1009);
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`[MQTT-3.1.2-24] ${protocolVersion === 5 ? '5.0' : '3.1.1'}: a subscriber on this door is never sent a message larger than the door carries; a 60 KB one arrives whole`, async () => {
      const topic = `apigw/size/${protocolVersion}/${Date.now()}`;
      const door = await RawConnection.apiGateway(harness().apigwUrl, protocolVersion);
      door.send(
        { cmd: 'connect', clientId: `size-${protocolVersion}-${process.pid}`, protocolVersion, clean: true, keepalive: 60 },
        { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] },
      );
      await door.next('suback');
      // Written at once, so one invocation routes all three: the one too large must not take the
      // others down with it. 98,304 bytes of packet fill the 128 KB message limit in base64; the
      // first is more.
      const device = await RawConnection.tcp(harness().mqttPort, 4);
      device.send(
        { cmd: 'connect', clientId: `sizer-${protocolVersion}-${process.pid}`, protocolVersion: 4, clean: true, keepalive: 60 },
        ...[Buffer.alloc(API_GATEWAY_OUTBOUND_PACKET_BYTES, 1), Buffer.alloc(60 * 1024, 2), Buffer.from('small')].map((payload) => ({
          cmd: 'publish' as const,
          topic,
          payload,
          qos: 0 as const,
          dup: false,
          retain: false,
        })),
      );
      await eventually(() => door.packets.filter((p) => p.cmd === 'publish').length === 2, 'the two messages that fit');
      await settle(200);
      const payloads = door.packets.flatMap((p) => (p.cmd === 'publish' ? [p.payload as Buffer] : []));
      expect(payloads.map((p) => p.length)).toEqual([60 * 1024, 5]);
      expect(payloads[0]!.every((b) => b === 2)).toBe(true);
      expect(door.closed).toBe(false);
      device.close();
      door.close();
    });
  }

  it('messages that together exceed 128 KB reach a subscriber on this door in several @connections messages, in order', async () => {
    const topic = `apigw/split/${Date.now()}`;
    const door = await RawConnection.apiGateway(harness().apigwUrl, 4);
    door.send(
      { cmd: 'connect', clientId: `split-${process.pid}`, protocolVersion: 4, clean: true, keepalive: 60 },
      { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] },
    );
    await door.next('suback');
    // Written at once, so the listener hands them to one invocation: one batch for this subscriber.
    const device = await RawConnection.tcp(harness().mqttPort, 4);
    device.send(
      { cmd: 'connect', clientId: `splitter-${process.pid}`, protocolVersion: 4, clean: true, keepalive: 60 },
      ...[1, 2, 3].map((n) => ({ cmd: 'publish' as const, topic, payload: Buffer.alloc(60 * 1024, n), qos: 0 as const, dup: false, retain: false })),
    );
    await eventually(() => door.packets.filter((p) => p.cmd === 'publish').length === 3, 'all three messages');
    expect(door.packets.flatMap((p) => (p.cmd === 'publish' ? [(p.payload as Buffer)[0]] : []))).toEqual([1, 2, 3]);
    device.close();
    door.close();
  });
});

describe('API Gateway door (emulated): MQTT_MAX_KEEPALIVE', () => {
  it('[MQTT-3.2.2-21] a 5.0 keep-alive of 0 or above the maximum is answered with Server Keep Alive 2; [MQTT-3.2.2-22] one within it is kept', async () => {
    const connacks = await Promise.all(
      [0, 60, 1].map(async (keepalive) => {
        const raw = await RawConnection.apiGateway(keepAliveHarness().apigwUrl, 5);
        raw.send({ cmd: 'connect', clientId: `max-keepalive-${process.pid}-${keepalive}`, protocolVersion: 5, clean: true, keepalive });
        const connack = (await raw.next('connack')) as { properties?: { serverKeepAlive?: number } };
        raw.close();
        return connack;
      }),
    );
    expect(connacks.map((connack) => connack.properties?.serverKeepAlive)).toEqual([2, 2, undefined]);
  });
});

describe('API Gateway door (emulated): keep-alive', () => {
  it('[MQTT-3.1.2-22] a client silent for more than 1.5 times its keep-alive is closed by the sweep (5.0 DISCONNECT 0x8D); one that pings is not', async () => {
    const silent = await RawConnection.apiGateway(harness().apigwUrl, 5);
    silent.send({ cmd: 'connect', clientId: `silent-${process.pid}`, protocolVersion: 5, clean: true, keepalive: 1 });
    await silent.next('connack');
    const pinging = await RawConnection.apiGateway(harness().apigwUrl, 4);
    pinging.send({ cmd: 'connect', clientId: `pinging-${process.pid}`, protocolVersion: 4, clean: true, keepalive: 1 });
    await pinging.next('connack');
    for (let i = 0; i < 4; i++) {
      await settle(500);
      pinging.send({ cmd: 'pingreq' });
      await pinging.next('pingresp');
    }
    // 2 s silent, past 1.5 s: the next sweep closes it (API Gateway itself would wait 10 minutes).
    await harness().sweep();
    const disconnect = (await silent.next('disconnect')) as { reasonCode?: number };
    expect(disconnect.reasonCode).toBe(0x8d);
    await silent.waitClosed();
    pinging.send({ cmd: 'pingreq' });
    await pinging.next('pingresp');
    pinging.close();
  });
});

describe('outgoing topic aliases on the API Gateway door', () => {
  it('[MQTT-3.3.2-11] a topic repeated within one delivery travels as an alias the first packet set; a single message gets none', async () => {
    const topic = `apigw-alias/${process.pid}/${Date.now()}`;
    const subscriber = await RawConnection.apiGateway(harness().apigwUrl, 5);
    subscriber.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: `apigw-alias-${process.pid}`, properties: { topicAliasMaximum: 2 } } as Packet);
    await subscriber.next('connack');
    subscriber.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    await subscriber.next('suback');
    const publisher = await RawConnection.tcp(harness().mqttPort, 5);
    publisher.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: `apigw-alias-pub-${process.pid}` } as Packet);
    await publisher.next('connack');
    const publish = (payload: string): Packet => ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false });
    publisher.send(publish('alone'));
    await eventually(() => subscriber.packets.filter((p) => p.cmd === 'publish').length === 1, 'the single message');
    // Three in one write: one batch, one delivery to the subscriber
    publisher.send(publish('p0'), publish('p1'), publish('p2'));
    await eventually(() => subscriber.packets.filter((p) => p.cmd === 'publish').length === 4, 'the three messages');
    const got = subscriber.packets.filter((p) => p.cmd === 'publish') as Array<Packet & { topic: string; properties?: { topicAlias?: number } }>;
    expect(got.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([
      [topic, undefined],
      [topic, 1],
      ['', 1],
      ['', 1],
    ]);
    subscriber.close();
    publisher.close();
  });
});
