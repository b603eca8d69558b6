/**
 * The listener's delivery endpoint against whatever reaches its port: paths that do not decode,
 * requests HTTP cannot parse, unsigned or badly signed requests, bodies over the limit. Each gets
 * its answer (400, 403, 413) and the endpoint goes on serving; only requests signed with the
 * delivery secret act on a connection. The gateway client signs, and splits what exceeds a request.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newListenerConnectionId } from '../../shared/gateway/connection-id';
import { ConnectionsApi } from '../../shared/gateway/connections-api';
import { encodeDeliveryBatch, MAX_DELIVERY_REQUEST_BYTES } from '../../shared/gateway/delivery-batch';
import { DeliverySigningError, signatureHeaders, SIGNATURE_WINDOW_MS } from '../../shared/gateway/delivery-signature';
import type { ClientConnection } from '../../shared/listener/client-connection';
import { createDeliveryServer } from '../../shared/listener/delivery-endpoint';

const secret = 'the-delivery-secret-shared-by-handlers-and-listener';

/** What a connection was asked to do. */
interface FakeConnection {
  delivered: Buffer[];
  closed: number;
}

const fakes = new Map<string, FakeConnection>();
let server: http.Server;
let endpoint = '';
let port = 0;
let knownId = '';

function fake(id: string): FakeConnection {
  const record: FakeConnection = { delivered: [], closed: 0 };
  fakes.set(id, record);
  return record;
}

function lookup(id: string): ClientConnection | undefined {
  const record = fakes.get(id);
  if (!record) return undefined;
  return {
    connectedAt: new Date(0),
    lastActiveAt: new Date(0),
    remoteAddress: '192.0.2.7',
    deliver: (bytes: Buffer) => record.delivered.push(Buffer.from(bytes)) > 0,
    serverClose: () => void record.closed++,
  } as unknown as ClientConnection;
}

/** A raw request, so that anything can be sent (Node's client would refuse some of these paths). */
function rawRequest(text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('end', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
    socket.end(text);
  });
}

const statusOf = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);

/** A request with Node's client: signed unless told otherwise. */
async function request(
  method: string,
  path: string,
  options: { body?: Buffer; sign?: boolean; headers?: Record<string, string>; secret?: string; now?: number } = {},
): Promise<{ status: number; body: string }> {
  const body = options.body ?? Buffer.alloc(0);
  const signed = options.sign === false ? {} : signatureHeaders(options.secret ?? secret, method, path, body, options.now ?? Date.now());
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { 'content-length': String(body.length), ...signed, ...options.headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    // The server may answer and close before the whole body is written (413, 403).
    req.on('error', reject);
    req.end(body);
  });
}

async function stillServes(): Promise<void> {
  expect((await request('GET', `/@connections/${encodeURIComponent(knownId)}`)).status).toBe(200);
}

beforeAll(async () => {
  server = createDeliveryServer(lookup, { secret });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  endpoint = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  fakes.clear();
  knownId = newListenerConnectionId(endpoint);
  fake(knownId);
});

describe('the delivery endpoint survives any request', () => {
  it('GET /@connections/% is answered 400, and the endpoint goes on serving', async () => {
    expect(statusOf(await rawRequest('GET /@connections/% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toBe(400);
    expect((await request('GET', '/@connections/%')).status).toBe(400);
    await stillServes();
  });

  it('answers 400 to every id that does not decode (a lone %, bad hex, bytes that are not UTF-8)', async () => {
    for (const id of ['%', '%E', '%zz', 'a%2', '%ff', '%C3%28', '%ED%A0%80']) {
      expect((await request('POST', `/@connections/${id}`, { body: Buffer.from('x') })).status, id).toBe(400);
      expect((await request('DELETE', `/@connections/${id}`)).status, id).toBe(400);
    }
    await stillServes();
  });

  it('answers 404 to paths that are not its routes and 405 to other methods', async () => {
    expect((await request('GET', '/elsewhere/@connections/abc')).status).toBe(404);
    expect((await request('GET', '/@connections/a/b')).status).toBe(404);
    expect((await request('PUT', `/@connections/${knownId}`)).status).toBe(405);
    expect((await request('GET', '/@connections')).status).toBe(405);
  });

  it('answers 400 to bytes that are not HTTP, and goes on serving', async () => {
    expect(statusOf(await rawRequest('\x00\x01\x02 not http at all\r\n\r\n'))).toBe(400);
    expect(statusOf(await rawRequest('GET /@connections/x HTTP/1.1\r\nContent-Length: nope\r\n\r\n'))).toBe(400);
    expect(statusOf(await rawRequest(`GET /${'a'.repeat(100_000)} HTTP/1.1\r\n\r\n`))).toBe(431);
    await stillServes();
  });

  it(`answers 413 to a body over ${MAX_DELIVERY_REQUEST_BYTES} bytes, declared or streamed, and delivers none of it`, async () => {
    const big = Buffer.alloc(MAX_DELIVERY_REQUEST_BYTES + 1, 0x30);
    expect((await request('POST', `/@connections/${knownId}`, { body: big })).status).toBe(413);
    expect((await request('POST', '/@connections', { body: big })).status).toBe(413);
    // Chunked: no length declared, so the limit is counted as the body arrives.
    const streamed = await new Promise<number>((resolve, reject) => {
      const path = '/@connections';
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers: { ...signatureHeaders(secret, 'POST', path, big, Date.now()) } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      for (let offset = 0; offset < big.length; offset += 1024 * 1024) req.write(big.subarray(offset, offset + 1024 * 1024));
      req.end();
    });
    expect(streamed).toBe(413);
    expect(fakes.get(knownId)!.delivered).toEqual([]);
    await stillServes();
  });
});

describe('the delivery endpoint acts only on requests signed with the delivery secret', () => {
  const path = () => `/@connections/${knownId}`;

  it('refuses with 403 a request that is unsigned, signed with another secret, stale, from the future, or whose body was changed', async () => {
    const body = Buffer.from('bytes for the device');
    const refused = [
      await request('POST', path(), { body, sign: false }),
      await request('POST', path(), { body, secret: 'another-secret-that-is-long-enough-too' }),
      await request('POST', path(), { body, now: Date.now() - SIGNATURE_WINDOW_MS - 5_000 }),
      await request('POST', path(), { body, now: Date.now() + SIGNATURE_WINDOW_MS + 5_000 }),
      await request('POST', path(), { body, headers: signatureHeaders(secret, 'POST', path(), Buffer.from('other bytes'), Date.now()) }),
      // Signed for another connection, or another method
      await request('POST', path(), { body, headers: signatureHeaders(secret, 'POST', `/@connections/${knownId}x`, body, Date.now()) }),
      await request('DELETE', path(), { headers: signatureHeaders(secret, 'GET', path(), undefined, Date.now()) }),
      await request('POST', path(), { body, headers: { 'x-mqtt-delivery-signature': 'zz' } }),
    ];
    expect(refused.map((r) => r.status)).toEqual(refused.map(() => 403));
    expect(fakes.get(knownId)).toEqual({ delivered: [], closed: 0 });
    expect((await request('POST', '/@connections', { body: encodeDeliveryBatch([[knownId, body]]), sign: false })).status).toBe(403);
    expect(fakes.get(knownId)!.delivered).toEqual([]);
  });

  it('delivers, answers, closes and reports gone ids for signed requests', async () => {
    expect((await request('POST', path(), { body: Buffer.from('one') })).status).toBe(200);
    expect(JSON.parse((await request('GET', path())).body)).toMatchObject({ Identity: { SourceIp: '192.0.2.7' } });
    const batch = await request('POST', '/@connections', { body: encodeDeliveryBatch([[knownId, Buffer.from('two')], ['no-such-id', Buffer.from('x')]]) });
    expect(batch).toEqual({ status: 200, body: JSON.stringify({ gone: ['no-such-id'] }) });
    expect((await request('DELETE', path())).status).toBe(204);
    expect((await request('GET', '/@connections/unknown')).status).toBe(410);
    expect(fakes.get(knownId)).toEqual({ delivered: [Buffer.from('one'), Buffer.from('two')], closed: 1 });
  });
});

describe('the gateway client and the delivery endpoint', () => {
  const clientConfig = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

  it('signs every request: send, probe, close, and batches', async () => {
    const api = new ConnectionsApi({ clientConfig, listenerSecret: () => Promise.resolve(secret) });
    const other = newListenerConnectionId(endpoint);
    fake(other);
    expect(await api.send(knownId, Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61]))).toBe('delivered');
    expect(await api.probe(knownId)).toBe('connected');
    const results = await api.sendMany([
      [knownId, Buffer.from([0xd0, 0x00])],
      [other, Buffer.from([0xd0, 0x00])],
      [newListenerConnectionId(endpoint), Buffer.from([0xd0, 0x00])],
    ]);
    expect([...results.values()]).toEqual(['delivered', 'delivered', 'gone']);
    await api.close(knownId);
    expect(fakes.get(knownId)).toEqual({ delivered: [Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61]), Buffer.from([0xd0, 0x00])], closed: 1 });
  });

  it('splits between whole packets what one request cannot carry, in order', async () => {
    const api = new ConnectionsApi({ clientConfig, listenerSecret: () => Promise.resolve(secret) });
    // Five QoS 0 PUBLISHes of 3 MB each: 15 MB for one connection, more than one request may carry.
    const packets = [1, 2, 3, 4, 5].map((n) => publishPacket(`t/${n}`, Buffer.alloc(3 * 1024 * 1024, n)));
    const results = await api.sendMany([[knownId, Buffer.concat(packets)]]);
    expect(results.get(knownId)).toBe('delivered');
    const delivered = fakes.get(knownId)!.delivered;
    expect(delivered.length).toBeGreaterThan(1);
    expect(Buffer.concat(delivered).equals(Buffer.concat(packets))).toBe(true);

    fakes.get(knownId)!.delivered = [];
    expect(await api.send(knownId, Buffer.concat(packets))).toBe('delivered');
    expect(Buffer.concat(fakes.get(knownId)!.delivered).equals(Buffer.concat(packets))).toBe(true);
  });

  it('gives up a delivery batch to a listener task that accepts it and never answers, after the request timeout', async () => {
    const silent = http.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const hung = newListenerConnectionId(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
      const api = new ConnectionsApi({ clientConfig, listenerSecret: () => Promise.resolve(secret), listenerRequestTimeoutMs: 300 });
      const started = Date.now();
      const results = await api.sendMany([
        [hung, Buffer.from([0xd0, 0x00])],
        [knownId, Buffer.from([0xd0, 0x00])],
      ]);
      expect(Date.now() - started).toBeLessThan(5_000);
      // The hung task's connection is left out (the caller logs it); the other task's is delivered.
      expect([...results]).toEqual([[knownId, 'delivered']]);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('without the secret a delivery to a device fails, and a probe says so rather than "gone"', async () => {
    const api = new ConnectionsApi({ clientConfig });
    await expect(api.send(knownId, Buffer.from([0xd0, 0x00]))).rejects.toBeInstanceOf(DeliverySigningError);
    await expect(api.probe(knownId)).rejects.toBeInstanceOf(DeliverySigningError);
    expect((await api.sendMany([[knownId, Buffer.from([0xd0, 0x00])]])).size).toBe(0);
    const unavailable = new ConnectionsApi({ clientConfig, listenerSecret: () => Promise.reject(new Error('Secrets Manager is down')) });
    await expect(unavailable.probe(knownId)).rejects.toThrow(/delivery secret is unavailable: Error: Secrets Manager is down/);
    expect(fakes.get(knownId)!.delivered).toEqual([]);
  });
});

/** A QoS 0 PUBLISH (MQTT 3.1.1), with a Remaining Length of up to four bytes. */
function publishPacket(topic: string, payload: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), Buffer.from(topic), payload]);
  const length: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x30, ...length]), body]);
}
