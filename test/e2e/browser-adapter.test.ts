/**
 * The browser adapter (web/adapter.ts) on the wire, against a plain WebSocket server: what it
 * sends (whole packets, numbered, within a frame) and what it takes back (base64 in text or
 * binary frames; API Gateway's own error messages skipped). Run on the `ws` package's WebSocket,
 * the way Chromium runs it in test/browser/.
 */
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { apiGatewayWebsocket, type ApiGatewaySocket } from '../../web/adapter';
import { eventually } from '../support/clients';

let server: WebSocketServer;
let url: string;
/** What the server received from the latest connection, and that connection. */
let received: string[] = [];
let peer: WebSocket | undefined;

beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'mqtt' });
  server.on('connection', (ws) => {
    peer = ws;
    received = [];
    ws.on('message', (data, isBinary) => received.push(isBinary ? '(binary)' : data.toString()));
  });
  await new Promise((resolve) => server.once('listening', resolve));
  url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function openAdapter(): Promise<ApiGatewaySocket> {
  const socket = apiGatewayWebsocket({ WebSocket })(url, ['mqtt']);
  await new Promise((resolve) => socket.addEventListener('open', resolve, { once: true }));
  await eventually(() => peer !== undefined && peer.readyState === WebSocket.OPEN, 'the server side');
  return socket;
}

const publish = (payload: Buffer) => mqttPacket.generate({ cmd: 'publish', topic: 't', payload, qos: 0, dup: false, retain: false });

describe('browser adapter', () => {
  it('sends whole packets only, numbered from 1, as text: a packet written in pieces goes once complete', async () => {
    const socket = await openAdapter();
    const connect = mqttPacket.generate({ cmd: 'connect', clientId: 'adapter', protocolVersion: 4, clean: true, keepalive: 30 });
    socket.send(connect.subarray(0, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received).toEqual([]);
    socket.send(connect.subarray(5));
    const ping = mqttPacket.generate({ cmd: 'pingreq' });
    await eventually(() => received.length === 1, 'the CONNECT');
    socket.send(ping);
    await eventually(() => received.length === 2, 'the PINGREQ');
    expect(received).toEqual([`1:${connect.toString('base64')}`, `2:${ping.toString('base64')}`]);
    socket.close();
  });

  it('packets written in one turn go in one message, split into several when they exceed a 32 KB frame', async () => {
    const socket = await openAdapter();
    const packets = [1, 2, 3].map((n) => publish(Buffer.alloc(10 * 1024, n)));
    for (const packet of packets) socket.send(packet);
    await eventually(() => received.length === 2, 'two messages');
    expect(received.map((m) => m.split(':')[0])).toEqual(['1', '2']);
    for (const message of received) expect(message.length).toBeLessThanOrEqual(32 * 1024);
    const bytes = Buffer.concat(received.map((m) => Buffer.from(m.split(':')[1]!, 'base64')));
    expect(bytes.equals(Buffer.concat(packets))).toBe(true);
    socket.close();
  });

  it('takes base64 from the server in text or binary frames, and skips API Gateway\'s JSON error message', async () => {
    const socket = await openAdapter();
    const got: Buffer[] = [];
    socket.addEventListener('message', (event) => got.push(Buffer.from((event as MessageEvent).data as ArrayBuffer)));
    const connack = mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false });
    const pingresp = mqttPacket.generate({ cmd: 'pingresp' });
    const warn = console.warn;
    const warnings: unknown[] = [];
    console.warn = (...args: unknown[]) => void warnings.push(args);
    try {
      peer!.send(connack.toString('base64'), { binary: false });
      peer!.send(JSON.stringify({ message: 'Internal server error', connectionId: 'x', requestId: 'y' }), { binary: false });
      peer!.send(Buffer.from(pingresp.toString('base64')), { binary: true });
      await eventually(() => got.length === 2, 'two packets');
    } finally {
      console.warn = warn;
    }
    expect(got.map((b) => b.toString('hex'))).toEqual([connack.toString('hex'), pingresp.toString('hex')]);
    expect(warnings).toHaveLength(1);
    socket.close();
  });
});
