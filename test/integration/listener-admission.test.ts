/**
 * What the listener lets in before any handler is invoked: connections per task and per client
 * address (the address from the PROXY protocol v2 header when the listener sits behind the NLB),
 * a socket without that header when one is required, and, before CONNECT, a small partial packet
 * for a limited time. The listener alone, with a handler that records what reaches it.
 */
import mqttPacket from 'mqtt-packet';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createJsonLogger } from '../../shared/util/logger';
import { perConnection, type OneConnectionEvent } from '../support/listener-events';
import { proxyHeader } from '../support/proxy-header';
import type { ListenerEvent } from '../../shared/listener/events';
import { MqttListener, type ListenerAddresses, type ListenerLimits } from '../../shared/listener/listener';
import { eventually, settle } from '../support/clients';
import { signedFetch, testDeliverySecret } from '../support/signed-fetch';

const deliverySecret = testDeliverySecret();

const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops) await stop();
});

async function startListener(limits: Partial<ListenerLimits>, proxyProtocol = false) {
  const events: OneConnectionEvent[] = [];
  const raw: ListenerEvent[] = [];
  const listener = new MqttListener({
    host: '127.0.0.1',
    mqttPort: 0,
    wsPort: 0,
    deliveryPort: 0,
    advertisedHost: '127.0.0.1',
    deliverySecret,
    sink: { invoke: async (event) => void (raw.push(event), events.push(...perConnection(event))) },
    log: createJsonLogger('silent'),
    limits,
    proxyProtocol,
  });
  const addresses: ListenerAddresses = await listener.start();
  stops.push(() => listener.stop(500));
  /** The connection ids whose packets reached the handler. */
  const invoked = (): Set<string> => new Set(events.filter((e) => e.type === 'packets').map((e) => e.connectionId));
  return { listener, events, raw, addresses, invoked };
}

let clientIds = 0;
const connectBytes = (): Buffer =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: `admission-${++clientIds}` });

/** A raw TCP client: writes `first` once connected; `closed` settles when the listener closes it. */
function tcpClient(port: number, first?: Buffer): { socket: net.Socket; closed: () => boolean; connected: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  let closed = false;
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  if (first) socket.write(first);
  return { socket, closed: () => closed, connected };
}

const LOCAL_HEADER = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');

async function sourceIp(deliveryEndpoint: string, connectionId: string): Promise<string> {
  const response = await signedFetch(deliverySecret, `${deliveryEndpoint}/@connections/${encodeURIComponent(connectionId)}`);
  return ((await response.json()) as { Identity: { SourceIp: string } }).Identity.SourceIp;
}

/** The connection id whose CONNECT carried this client id. */
function connectionOf(events: OneConnectionEvent[], clientId: string): string | undefined {
  return events.find((e) => e.type === 'packets' && Buffer.from(e.packets[0]!, 'base64').includes(clientId))?.connectionId;
}

describe('connections per task', () => {
  it('a socket beyond the cap is closed at once, on either door, and reaches no handler; a freed place is taken again', async () => {
    const { listener, addresses, invoked } = await startListener({ maxConnections: 3 });
    const held = [tcpClient(addresses.mqttPort, connectBytes()), tcpClient(addresses.mqttPort, connectBytes()), tcpClient(addresses.mqttPort, connectBytes())];
    await eventually(() => invoked().size === 3, 'three connections in');

    const extra = tcpClient(addresses.mqttPort, connectBytes());
    await eventually(extra.closed, 'the fourth socket to be closed');
    const ws = new WebSocket(`ws://127.0.0.1:${addresses.wsPort}/mqtt`, 'mqtt');
    const wsFailed = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(false));
      ws.once('error', () => resolve(true));
    });
    expect(wsFailed).toBe(true);
    await settle(200);
    expect(invoked().size).toBe(3);
    expect(listener.stats().refused.task).toBe(2);

    held[0]!.socket.destroy();
    await eventually(() => listener.stats().openSockets === 2, 'the place to be freed');
    tcpClient(addresses.mqttPort, connectBytes());
    await eventually(() => invoked().size === 4, 'a new connection in the freed place');
    expect(listener.stats().openSockets).toBe(3);
  });
});

describe('connections per address', () => {
  it('without PROXY protocol, the socket peer is the address: the third from 127.0.0.1 is closed at once', async () => {
    const { listener, addresses, invoked } = await startListener({ maxConnectionsPerAddress: 2 });
    tcpClient(addresses.mqttPort, connectBytes());
    tcpClient(addresses.mqttPort, connectBytes());
    await eventually(() => invoked().size === 2, 'two connections in');
    const third = tcpClient(addresses.mqttPort, connectBytes());
    await eventually(third.closed, 'the third socket to be closed');
    await settle(200);
    expect(invoked().size).toBe(2);
    expect(listener.stats().refused).toEqual({ task: 0, address: 1, proxyHeader: 0 });
  });

  it('with PROXY protocol, the address is the header source: a third from 203.0.113.7 is closed, one from 203.0.113.8 is not', async () => {
    const { listener, addresses, events, invoked } = await startListener({ maxConnectionsPerAddress: 2 }, true);
    const connect = (source: string): ReturnType<typeof tcpClient> => tcpClient(addresses.mqttPort, Buffer.concat([proxyHeader(source), connectBytes()]));
    connect('203.0.113.7');
    connect('203.0.113.7');
    await eventually(() => invoked().size === 2, 'two connections from 203.0.113.7');
    const third = connect('203.0.113.7');
    await eventually(third.closed, 'the third from 203.0.113.7 to be closed');
    const other = connect('203.0.113.8');
    await eventually(() => invoked().size === 3, 'the one from 203.0.113.8');
    expect(other.closed()).toBe(false);
    expect(listener.stats().refused.address).toBe(1);
    const ids = [...invoked()];
    expect(await Promise.all(ids.map((id) => sourceIp(addresses.deliveryEndpoint, id)))).toEqual(['203.0.113.7', '203.0.113.7', '203.0.113.8']);
    expect(events.filter((e) => e.type === 'packets')).toHaveLength(3);
  });
});

describe('PROXY protocol v2 on the listener', () => {
  const limits = { connectTimeoutMs: 500 };

  it("hands the handler the header's source address with the connection's first packets (its CONNECT) only", async () => {
    const { raw, addresses } = await startListener(limits, true);
    const client = tcpClient(addresses.mqttPort, Buffer.concat([proxyHeader('198.51.100.61'), connectBytes()]));
    const entries = () => raw.flatMap((event) => (event.type === 'batch' ? event.connections : []));
    await eventually(() => entries().length === 1, 'the CONNECT');
    client.socket.write(Buffer.from([0xc0, 0x00])); // PINGREQ
    await eventually(() => entries().length === 2, 'the PINGREQ');
    expect(entries().map((entry) => entry.sourceAddress)).toEqual(['198.51.100.61', undefined]);
    client.socket.destroy();
  });

  it('TCP: the header may arrive in pieces, and the packets after it in the same write; the source is the GET Identity.SourceIp', async () => {
    const { addresses, events } = await startListener(limits, true);
    const header = proxyHeader('198.51.100.23');
    const client = tcpClient(addresses.mqttPort);
    await client.connected;
    for (const byte of header.subarray(0, 20)) {
      client.socket.write(Buffer.from([byte]));
      await settle(5);
    }
    const connect = connectBytes();
    client.socket.write(Buffer.concat([header.subarray(20), connect]));
    const clientId = `admission-${clientIds}`;
    await eventually(() => connectionOf(events, clientId) !== undefined, 'the CONNECT after the header');
    const event = events.find((e) => e.type === 'packets')!;
    expect(event.type === 'packets' && Buffer.from(event.packets[0]!, 'base64').equals(connect)).toBe(true);
    expect(await sourceIp(addresses.deliveryEndpoint, connectionOf(events, clientId)!)).toBe('198.51.100.23');
  });

  it('WebSocket: the header comes before the HTTP upgrade; the source is the GET Identity.SourceIp', async () => {
    const { addresses, events } = await startListener(limits, true);
    const ws = new WebSocket(`ws://127.0.0.1:${addresses.wsPort}/mqtt`, 'mqtt', {
      createConnection: () => {
        const socket = net.connect(addresses.wsPort, '127.0.0.1');
        socket.write(proxyHeader('198.51.100.24'));
        return socket;
      },
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(connectBytes());
    const clientId = `admission-${clientIds}`;
    await eventually(() => connectionOf(events, clientId) !== undefined, 'the CONNECT over the WebSocket');
    expect(await sourceIp(addresses.deliveryEndpoint, connectionOf(events, clientId)!)).toBe('198.51.100.24');
    ws.terminate();
  });

  it('a LOCAL header (a health check) names no client: the socket peer stands', async () => {
    const { addresses, events } = await startListener(limits, true);
    tcpClient(addresses.mqttPort, Buffer.concat([LOCAL_HEADER, connectBytes()]));
    const clientId = `admission-${clientIds}`;
    await eventually(() => connectionOf(events, clientId) !== undefined, 'the CONNECT after a LOCAL header');
    expect(await sourceIp(addresses.deliveryEndpoint, connectionOf(events, clientId)!)).toBe('127.0.0.1');
  });

  it('a socket without the header is closed at once (long before the deadline), on either door, and reaches no handler', async () => {
    const { listener, addresses, events } = await startListener({ connectTimeoutMs: 60_000 }, true);
    const plain = tcpClient(addresses.mqttPort, connectBytes());
    await eventually(plain.closed, 'the socket without a header to be closed');
    const ws = new WebSocket(`ws://127.0.0.1:${addresses.wsPort}/mqtt`, 'mqtt');
    const wsFailed = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(false));
      ws.once('error', () => resolve(true));
    });
    expect(wsFailed).toBe(true);
    expect(events).toEqual([]);
    expect(listener.stats().refused.proxyHeader).toBe(2);
  });

  it('a socket that sends no header is closed at the CONNECT deadline; one that closes without a byte is not counted as refused', async () => {
    const { listener, addresses, events } = await startListener(limits, true);
    const silent = tcpClient(addresses.mqttPort);
    await silent.connected;
    const checkLike = tcpClient(addresses.mqttPort);
    await checkLike.connected;
    checkLike.socket.destroy();
    await eventually(silent.closed, 'the silent socket to be closed at the deadline', 5_000);
    expect(events).toEqual([]);
    expect(listener.stats().refused.proxyHeader).toBe(1);
    expect(listener.stats().openSockets).toBe(0);
  });
});

describe('the WebSocket port', () => {
  it('a socket that never completes its upgrade is closed at the CONNECT deadline, and reaches no handler', async () => {
    const { listener, addresses, events } = await startListener({ connectTimeoutMs: 500 });
    const silent = tcpClient(addresses.wsPort);
    const halfRequest = tcpClient(addresses.wsPort, Buffer.from('GET /mqtt HTTP/1.1\r\nHost: x\r\n'));
    await Promise.all([silent.connected, halfRequest.connected]);
    await settle(200);
    expect(silent.closed() || halfRequest.closed()).toBe(false);
    await eventually(() => silent.closed() && halfRequest.closed(), 'both sockets to be closed at the deadline', 5_000);
    expect(events).toEqual([]);
    await eventually(() => listener.stats().openSockets === 0, 'their places to be freed');
  });
});

describe('before CONNECT', () => {
  const limits = { maxConnectPacketSize: 1024, connectTimeoutMs: 500 };
  // "At once" is long before this deadline.
  const patient = { maxConnectPacketSize: 1024, connectTimeoutMs: 60_000 };
  const publish = (size: number): Buffer =>
    mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(size), qos: 0, dup: false, retain: false });

  it('a first packet announcing more than the pre-CONNECT limit is closed at once, before its bytes, with no handler invoked', async () => {
    const { addresses, events } = await startListener(patient);
    // A CONNECT's fixed header announcing 2,000 bytes; none of them sent
    const client = tcpClient(addresses.mqttPort, Buffer.from([0x10, 0xd0, 0x0f]));
    await eventually(client.closed, 'the socket to be closed');
    expect(events).toEqual([]);
  });

  it('a partial first packet within the limit is held only until the CONNECT deadline, with no handler invoked', async () => {
    const { addresses, events } = await startListener(limits);
    // A CONNECT announcing 1,000 bytes, of which 500 are sent
    const client = tcpClient(addresses.mqttPort, Buffer.concat([Buffer.from([0x10, 0xe5, 0x07]), Buffer.alloc(500)]));
    await client.connected;
    await settle(200);
    expect(client.closed()).toBe(false);
    await eventually(client.closed, 'the socket to be closed at the deadline', 5_000);
    expect(events).toEqual([]);
  });

  it('after the CONNECT, the normal maximum packet size applies: a 100 KB PUBLISH passes, in the same write or after', async () => {
    const { addresses, events } = await startListener(limits);
    const big = publish(100_000);
    const together = tcpClient(addresses.mqttPort, Buffer.concat([connectBytes(), big]));
    const after = tcpClient(addresses.mqttPort, connectBytes());
    await eventually(() => events.filter((e) => e.type === 'packets').length >= 2, 'both CONNECTs');
    after.socket.write(big);
    const packets = (): Buffer[] => events.flatMap((e) => (e.type === 'packets' ? e.packets.map((p) => Buffer.from(p, 'base64')) : []));
    await eventually(() => packets().filter((p) => p.equals(big)).length === 2, 'both PUBLISHes');
    expect(together.closed() || after.closed()).toBe(false);
  });
});

describe('a spread drain', () => {
  it('tells its connections in waves over the spread: 12 sockets closed across more than a second, not at once', async () => {
    const { listener, addresses, invoked } = await startListener({});
    const clients = Array.from({ length: 12 }, () => tcpClient(addresses.mqttPort, connectBytes()));
    await eventually(() => invoked().size === 12, 'twelve connections in');
    const closedAt: number[] = [];
    const started = Date.now();
    for (const client of clients) client.socket.on('close', () => closedAt.push(Date.now() - started));
    await listener.stop(5_000, 2_000);
    await eventually(() => closedAt.length === 12, 'every socket closed');
    closedAt.sort((a, b) => a - b);
    // The first wave goes at once, the last about 2 s later.
    expect(closedAt[0]!).toBeLessThan(500);
    expect(closedAt[11]! - closedAt[0]!).toBeGreaterThan(1_000);
  });
});
