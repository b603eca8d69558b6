/**
 * The API Gateway emulator on its own, with routes that record what they are given: the event
 * fields, frame and message limits, `@connections`, and the switches tests use (jitter, lost
 * `$disconnect`). What it promises is what AWS does (see the quotas for WebSocket APIs), so a
 * test that passes here does not break on AWS for a reason the emulator hid.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiGatewayEmulator, type EmulatorOptions } from '../../local/apigw-emulator';
import { createJsonLogger } from '../../shared/util/logger';
import { eventually, settle } from '../support/clients';

interface Recorded {
  readonly events: Array<{ routeKey: string; event: Record<string, any> }>;
  /** Bodies of `$default` invocations, in the order the invocations started. */
  readonly bodies: string[];
}

interface Running {
  readonly emulator: ApiGatewayEmulator;
  readonly url: string;
  readonly management: string;
  readonly recorded: Recorded;
}

async function startEmulator(options: Partial<EmulatorOptions> = {}, failDefault = false): Promise<Running> {
  const emulator = new ApiGatewayEmulator({ host: '127.0.0.1', port: 0, log: createJsonLogger('silent'), ...options });
  const recorded: Recorded = { events: [], bodies: [] };
  const record = (routeKey: string) => async (event: never) => {
    recorded.events.push({ routeKey, event });
    if (routeKey === '$default') {
      recorded.bodies.push((event as { body: string }).body);
      if (failDefault) throw new Error('integration failed');
    }
    return routeKey === '$connect' ? { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'mqtt' } } : { statusCode: 200 };
  };
  emulator.routes = { $connect: record('$connect'), $default: record('$default'), $disconnect: record('$disconnect') };
  const { url, managementEndpoint } = await emulator.start();
  return { emulator, url, management: managementEndpoint, recorded };
}

async function open(url: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }>; messages: string[] }> {
  const ws = new WebSocket(url, 'mqtt');
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, closed, messages };
}

function connectionIdOf(recorded: Recorded): string {
  return recorded.events.find((e) => e.routeKey === '$connect')!.event.requestContext.connectionId;
}

describe('API Gateway emulator', () => {
  let running: Running;
  beforeAll(async () => {
    running = await startEmulator();
  });
  afterAll(async () => {
    await running.emulator.stop();
  });

  it('gives $connect, $default and $disconnect the fields AWS sends', async () => {
    const before = running.recorded.events.length;
    const { ws, closed } = await open(running.url);
    ws.send('hello');
    await eventually(() => running.recorded.bodies.includes('hello'), 'the $default invocation');
    ws.close(1000, 'bye');
    await closed;
    await eventually(() => running.recorded.events.slice(before).some((e) => e.routeKey === '$disconnect'), 'the $disconnect invocation');
    const [connect, message, disconnect] = running.recorded.events.slice(before).map((e) => e.event);
    const common = {
      stage: 'local',
      messageDirection: 'IN',
      connectedAt: expect.any(Number),
      requestTimeEpoch: expect.any(Number),
      requestTime: expect.stringMatching(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/),
      requestId: expect.any(String),
      extendedRequestId: expect.any(String),
      domainName: new URL(running.url).host,
      apiId: expect.any(String),
      identity: { sourceIp: '127.0.0.1', userAgent: expect.any(String) },
    };
    const connectionId = connect!.requestContext.connectionId;
    expect(connectionId).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(connect).toMatchObject({
      headers: { 'Sec-Websocket-Protocol': 'mqtt' },
      multiValueHeaders: { 'Sec-Websocket-Protocol': ['mqtt'] },
      isBase64Encoded: false,
      requestContext: { ...common, routeKey: '$connect', eventType: 'CONNECT', connectionId, messageId: null, disconnectStatusCode: null, disconnectReason: null },
    });
    expect(message).toMatchObject({
      body: 'hello',
      isBase64Encoded: false,
      requestContext: { ...common, routeKey: '$default', eventType: 'MESSAGE', connectionId, messageId: expect.any(String) },
    });
    expect(disconnect).toMatchObject({
      isBase64Encoded: false,
      headers: { Host: new URL(running.url).host },
      requestContext: { ...common, routeKey: '$disconnect', eventType: 'DISCONNECT', connectionId, disconnectStatusCode: 1000, disconnectReason: 'bye' },
    });
    // One connection, one connectedAt, in every event.
    expect(new Set([connect, message, disconnect].map((e) => e!.requestContext.connectedAt)).size).toBe(1);
  });

  it('a close frame without a status reaches $disconnect as 1005', async () => {
    const before = running.recorded.events.length;
    const { ws, closed } = await open(running.url);
    ws.close();
    await closed;
    await eventually(() => running.recorded.events.slice(before).some((e) => e.routeKey === '$disconnect'), '$disconnect');
    const disconnect = running.recorded.events.slice(before).find((e) => e.routeKey === '$disconnect')!.event;
    expect(disconnect.requestContext).toMatchObject({ disconnectStatusCode: 1005, disconnectReason: 'Client-side close frame status not set' });
  });

  it('closes with 1009 on a frame over 32 KB, and never invokes $default with it', async () => {
    const { ws, closed } = await open(running.url);
    const before = running.recorded.bodies.length;
    ws.send('x'.repeat(32 * 1024 + 1));
    expect((await closed).code).toBe(1009);
    await settle(100);
    expect(running.recorded.bodies.length).toBe(before);
  });

  it('takes a message of up to 128 KB in frames of at most 32 KB as one $default invocation', async () => {
    const { ws } = await open(running.url);
    const text = 'y'.repeat(100 * 1024);
    for (let offset = 0; offset < text.length; offset += 32 * 1024) {
      ws.send(text.slice(offset, offset + 32 * 1024), { fin: offset + 32 * 1024 >= text.length });
    }
    await eventually(() => running.recorded.bodies.includes(text), 'the whole message');
    ws.close();
  });

  it('closes with 1009 on a message over 128 KB, even in small frames', async () => {
    const { ws, closed } = await open(running.url);
    const frame = 'z'.repeat(16 * 1024);
    for (let i = 0; i < 9; i++) ws.send(frame, { fin: i === 8 });
    expect((await closed).code).toBe(1009);
  });

  it('closes with 1003 on a binary frame', async () => {
    const { ws, closed } = await open(running.url);
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await closed).code).toBe(1003);
  });

  it('@connections: POST reaches the client as text, GET describes it, DELETE closes it with 1000, then 410', async () => {
    const before = running.recorded.events.length;
    const { closed, messages } = await open(running.url);
    await eventually(() => running.recorded.events.length > before, '$connect');
    const at = `${running.management}/@connections/${encodeURIComponent(connectionIdOf({ ...running.recorded, events: running.recorded.events.slice(before) }))}`;
    expect((await fetch(at, { method: 'POST', body: 'to the client' })).status).toBe(200);
    await eventually(() => messages.includes('to the client'), 'the posted message');
    const got = await fetch(at);
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ connectedAt: expect.any(String), lastActiveAt: expect.any(String), identity: { sourceIp: '127.0.0.1' } });
    expect((await fetch(at, { method: 'DELETE' })).status).toBe(204);
    expect((await closed).code).toBe(1000);
    const gone = await fetch(at, { method: 'POST', body: 'too late' });
    expect(gone.status).toBe(410);
    expect(gone.headers.get('x-amzn-errortype')).toBe('GoneException');
  });

  it('@connections: POST over 128 KB is refused with 413; 100 KB goes out as 32 KB frames', async () => {
    const before = running.recorded.events.length;
    const raw = await rawFrames(running.url);
    await eventually(() => running.recorded.events.length > before, '$connect');
    const at = `${running.management}/@connections/${encodeURIComponent(connectionIdOf({ ...running.recorded, events: running.recorded.events.slice(before) }))}`;
    const tooLarge = await fetch(at, { method: 'POST', body: 'a'.repeat(128 * 1024 + 1) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.get('x-amzn-errortype')).toBe('PayloadTooLargeException');
    expect((await fetch(at, { method: 'POST', body: 'b'.repeat(100 * 1024) })).status).toBe(200);
    await eventually(() => raw.frames.some((f) => f.fin), 'the last frame');
    // text, then continuations (RFC 6455 opcodes 1 and 0), each at most 32 KB
    expect(raw.frames.map((f) => [f.opcode, f.length, f.fin])).toEqual([
      [1, 32768, false],
      [0, 32768, false],
      [0, 32768, false],
      [0, 4096, true],
    ]);
    raw.socket.destroy();
  });
});

describe('API Gateway emulator switches', () => {
  it('with jitter, $default invocations of one connection start out of order', async () => {
    // Each delay 40 ms shorter than the one before (far more than the messages' arrival apart,
    // even on a loaded machine): the later message starts first, every time.
    let delay = 1;
    const running = await startEmulator({ jitterMs: 1000, random: () => (delay -= 0.04) });
    try {
      const { ws } = await open(running.url);
      const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
      for (const body of sent) ws.send(body);
      await eventually(() => running.recorded.bodies.length === sent.length, 'every invocation');
      expect(running.recorded.bodies).toEqual([...sent].reverse());
      ws.close();
    } finally {
      await running.emulator.stop();
    }
  });

  it('dropDisconnect: a close reaches no $disconnect, as when API Gateway loses it', async () => {
    const running = await startEmulator({ dropDisconnect: true });
    try {
      const { ws, closed } = await open(running.url);
      ws.close(1000);
      await closed;
      await settle(200);
      expect(running.recorded.events.map((e) => e.routeKey)).toEqual(['$connect']);
    } finally {
      await running.emulator.stop();
    }
  });

  it('a failing $default sends the client API Gateway\'s error message', async () => {
    const running = await startEmulator({}, true);
    try {
      const { ws, messages } = await open(running.url);
      ws.send('boom');
      await eventually(() => messages.length === 1, 'the error message');
      expect(JSON.parse(messages[0]!)).toMatchObject({ message: 'Internal server error', connectionId: connectionIdOf(running.recorded), requestId: expect.any(String) });
      ws.close();
    } finally {
      await running.emulator.stop();
    }
  });

  it('closes an idle connection with 1001 after the idle timeout', async () => {
    const running = await startEmulator({ idleTimeoutMs: 300 });
    try {
      const { closed } = await open(running.url);
      expect((await closed).code).toBe(1001);
    } finally {
      await running.emulator.stop();
    }
  });
});

/**
 * A WebSocket client on a bare socket that reports the frames the server sends (RFC 6455 section
 * 5.2), which no WebSocket library shows: they hand over whole messages.
 */
async function rawFrames(url: string): Promise<{ socket: net.Socket; frames: Array<{ opcode: number; length: number; fin: boolean }> }> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const frames: Array<{ opcode: number; length: number; fin: boolean }> = [];
  let buffered = Buffer.alloc(0);
  let upgraded = false;
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!upgraded) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buffered.subarray(0, end).toString().startsWith('HTTP/1.1 101')) return reject(new Error('no upgrade'));
        upgraded = true;
        buffered = buffered.subarray(end + 4);
        resolve();
      }
      for (;;) {
        if (buffered.length < 2) return;
        const length7 = buffered[1]! & 0x7f;
        const headerLength = length7 === 126 ? 4 : length7 === 127 ? 10 : 2;
        if (buffered.length < headerLength) return;
        const length = length7 === 126 ? buffered.readUInt16BE(2) : length7 === 127 ? Number(buffered.readBigUInt64BE(2)) : length7;
        if (buffered.length < headerLength + length) return;
        frames.push({ opcode: buffered[0]! & 0x0f, length, fin: (buffered[0]! & 0x80) !== 0 });
        buffered = buffered.subarray(headerLength + length);
      }
    });
    socket.write(
      [
        'GET / HTTP/1.1',
        `Host: ${hostname}:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Protocol: mqtt',
        '',
        '',
      ].join('\r\n'),
    );
  });
  return { socket, frames };
}
