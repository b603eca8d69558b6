/**
 * The browser door through the API Gateway emulator, at the level of bytes: MQTT packets travel
 * base64-encoded in text frames, and the AWS behaviours that break naive MQTT over WebSocket
 * hold. (The browser adapter and the ordering of concurrent `$default` invocations come with
 * the browser work.)
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { collect, connectClient, eventually } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness();

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
});
