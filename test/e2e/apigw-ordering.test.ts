/**
 * Order on the API Gateway door. The emulator starts each `$default` invocation after a random
 * delay (as concurrent Lambda invocations may run on AWS), so messages overtake each other on
 * the way in; the numbers the browser adapter puts on them, and the Inbox the handler parks
 * early ones in, restore the client's order.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { collect, connectClient, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const JITTER_MS = 40;
const harness = useHarness({ apigw: { jitterMs: JITTER_MS }, sequencing: { gapTimeoutMs: 500 } });

let counter = 0;
const unique = (name: string): string => `${name}-${process.pid}-${++counter}`;

/** CONNECT, SUBSCRIBE to its own topic and ten QoS 1 PUBLISHes, each sent as its own message, back to back. */
function sendBackToBack(door: RawConnection, topic: string): string[] {
  const payloads = Array.from({ length: 10 }, (_, i) => `p${i}`);
  door.send({ cmd: 'connect', clientId: unique('ordered'), protocolVersion: 4, clean: true, keepalive: 60 });
  door.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
  payloads.forEach((payload, i) =>
    door.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId: 10 + i, dup: false, retain: false }),
  );
  return payloads;
}

describe('API Gateway door: order of concurrent $default invocations', () => {
  it('[MQTT-4.6.0-6] CONNECT, SUBSCRIBE and ten PUBLISHes sent back to back are handled in the order sent', async () => {
    const topic = unique('order');
    const watcher = await connectClient(harness().mqttUrl);
    const watched = collect(watcher);
    await watcher.subscribeAsync(topic, { qos: 1 });
    const door = await RawConnection.apiGateway(harness().apigwUrl, 4);
    const payloads = sendBackToBack(door, topic);

    await eventually(() => door.packets.filter((p) => p.cmd === 'publish').length === 10, 'its own ten messages back');
    await eventually(() => watched.length === 10, 'the ten messages at a device');
    const cmds = door.packets.map((p) => p.cmd);
    expect(cmds.slice(0, 2)).toEqual(['connack', 'suback']);
    expect(door.packets.flatMap((p) => (p.cmd === 'publish' ? [p.payload.toString()] : []))).toEqual(payloads);
    expect(door.packets.flatMap((p) => (p.cmd === 'puback' ? [p.messageId] : []))).toEqual(payloads.map((_, i) => 10 + i));
    expect(watched.map((m) => m.payload)).toEqual(payloads);
    expect(door.closed).toBe(false);
    door.close();
    await watcher.endAsync();
  });

  it('the same messages without sequence numbers are not handled in order: the jitter is real', async () => {
    const topic = unique('unordered');
    const watcher = await connectClient(harness().mqttUrl);
    const watched = collect(watcher);
    await watcher.subscribeAsync(topic, { qos: 1 });
    const door = await RawConnection.apiGateway(harness().apigwUrl, 4, { sequenced: false });
    const payloads = sendBackToBack(door, topic);
    // Every invocation has started and finished well within this.
    await settle(JITTER_MS * 10 + 1_000);
    const echoed = door.packets.flatMap((p) => (p.cmd === 'publish' ? [p.payload.toString()] : []));
    // Whatever happened (CONNECT overtaken and the connection closed, a PUBLISH before the
    // SUBSCRIBE, two PUBLISHes swapped), the client's order did not survive.
    expect({ echoed, watched: watched.map((m) => m.payload) }).not.toEqual({ echoed: payloads, watched: payloads });
    door.close();
    await watcher.endAsync();
  });

  it('a message that never arrives: once the one after it has waited the gap timeout, the connection is closed', async () => {
    const ws = new WebSocket(harness().apigwUrl, 'mqtt');
    const packets: Packet[] = [];
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet: Packet) => packets.push(packet));
    ws.on('message', (data) => parser.parse(Buffer.from(data.toString(), 'base64')));
    let closed = false;
    ws.on('close', () => (closed = true));
    await new Promise((resolve) => ws.once('open', resolve));
    const send = (sequence: number, packet: Packet) => ws.send(`${sequence}:${mqttPacket.generate(packet).toString('base64')}`);

    send(1, { cmd: 'connect', clientId: unique('gap'), protocolVersion: 4, clean: true, keepalive: 60 });
    await eventually(() => packets.some((p) => p.cmd === 'connack'), 'CONNACK');
    // Message 2 is lost on the way (as when its invocation fails); 3 waits for it.
    send(3, { cmd: 'pingreq' });
    await settle(JITTER_MS + 200);
    expect(packets.map((p) => p.cmd)).toEqual(['connack']);
    expect(closed).toBe(false);
    await settle(500);
    send(4, { cmd: 'pingreq' });
    await eventually(() => closed, 'the broker to close the broken connection');
    expect(packets.map((p) => p.cmd)).toEqual(['connack']);
  });
});
