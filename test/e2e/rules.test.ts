/**
 * Rules end to end, against the harness `npm start` runs: a webhook reached from mosquitto_pub,
 * a QoS 1 PUBACK held until the webhook accepted (or the message was dead-lettered), a PUBLISH
 * neither takes left unacknowledged, republishing to MQTT.js, an in-process Lambda function, a will, and
 * Kinesis records in kinesalite read back with GetRecords.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateStreamCommand, DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import kinesalite from 'kinesalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually, settle } from '../support/clients';
import { useHarness } from '../support/harness';
import { parseRules } from '../../shared/rules/rule-config';

/** A webhook: records what it is sent; `answer` decides each request's status (a promise holds the answer back). */
class Webhook {
  readonly bodies: Array<{ path: string; messages: Array<Record<string, unknown>> }> = [];
  answer: (path: string, call: number) => number | Promise<number> = () => 200;
  private readonly server: Server = createServer((request, response) => void this.handle(request, response));
  private calls = 0;

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  messages(prefix: string): Array<Record<string, unknown>> {
    return this.bodies.filter((b) => b.path.startsWith(prefix)).flatMap((b) => b.messages);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const status = await this.answer(request.url!, ++this.calls);
    if (status === 200) this.bodies.push({ path: request.url!, ...(JSON.parse(Buffer.concat(chunks).toString()) as { messages: Array<Record<string, unknown>> }) });
    response.writeHead(status).end();
  }
}

const webhook = new Webhook();
const dir = mkdtempSync(path.join(os.tmpdir(), 'rules-e2e-'));
const deadLetters = path.join(dir, 'dead-letters.jsonl');
const invoked: unknown[] = [];
const kinesisServer = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0 });
let kinesis: KinesisClient;
let url = '';

beforeAll(async () => {
  url = await webhook.start();
  await new Promise<void>((resolve) => kinesisServer.listen(0, '127.0.0.1', () => resolve()));
  kinesis = new KinesisClient({
    endpoint: `http://127.0.0.1:${(kinesisServer.address() as AddressInfo).port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
    // kinesalite speaks HTTP/1.1; the Kinesis client defaults to HTTP/2 (for SubscribeToShard).
    requestHandler: new NodeHttpHandler(),
  });
  await kinesis.send(new CreateStreamCommand({ StreamName: 'telemetry', ShardCount: 1 }));
});

afterAll(async () => {
  kinesis?.destroy();
  await new Promise<void>((resolve) => kinesisServer.close(() => resolve()));
  await webhook.stop();
});

const harness = useHarness(() => ({
  rules: {
    rules: parseRules(
      [
        { name: 'temps', filter: 'sensors/+/temp', target: { type: 'http', url: `${url}/hook` } },
        { name: 'flaky', filter: 'flaky/+', target: { type: 'http', url: `${url}/flaky` }, deadLetter: { type: 'file', path: deadLetters } },
        { name: 'down', filter: 'down/+', target: { type: 'http', url: `${url}/down` }, deadLetter: { type: 'file', path: deadLetters } },
        { name: 'lost', filter: 'lost/+', target: { type: 'http', url: `${url}/down` } },
        { name: 'alerts', filter: 'readings/+/temp', where: 'temp > 30', select: ['temp'], target: { type: 'republish', topic: 'alerts/${topic(2)}', qos: 1 } },
        { name: 'fleet', filter: 'fleet/+/telemetry', select: ['speed'], target: { type: 'lambda', function: 'telemetry-consumer' } },
        { name: 'stream', filter: 'kin/#', target: { type: 'kinesis', stream: 'telemetry' } },
      ],
      'test rules',
    ),
    functions: { 'telemetry-consumer': (event) => void invoked.push(event) },
    clients: { kinesis },
    retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 50 },
  },
}));

function mosquittoPub(args: string[]): Promise<number | null> {
  const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(harness().mqttPort), ...args], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

describe('rules', () => {
  it('a message mosquitto_pub publishes to sensors/d1/temp reaches the webhook with its topic and payload', async () => {
    expect(await mosquittoPub(['-i', 'sensor-d1', '-t', 'sensors/d1/temp', '-m', '{"temp": 21.5}', '-q', '1'])).toBe(0);
    await eventually(() => webhook.messages('/hook').length === 1, 'the webhook to receive the message');
    expect(webhook.messages('/hook')[0]).toMatchObject({ rule: 'temps', topic: 'sensors/d1/temp', payload: '{"temp": 21.5}', encoding: 'utf8', qos: 1, retain: false, clientId: 'sensor-d1' });
    expect(await mosquittoPub(['-t', 'sensors/d1/humidity', '-m', '40'])).toBe(0);
    await settle(300);
    expect(webhook.messages('/hook')).toHaveLength(1);
  });

  it("one client's burst of QoS 1 PUBLISHes, handled in one run, reaches the webhook in fewer requests than messages", async () => {
    const before = webhook.bodies.filter((b) => b.path === '/hook').length;
    const client = await connectClient(harness().mqttUrl);
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.publishAsync(`sensors/burst${i}/temp`, String(i), { qos: 1 })));
    const requests = webhook.bodies.filter((b) => b.path === '/hook').slice(before);
    expect(requests.flatMap((b) => b.messages.map((m) => m.payload)).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(requests.length).toBeLessThan(10);
    await endAll(client);
  });

  it('a QoS 1 PUBLISH is not acknowledged until the webhook accepted it, after it first failed', async () => {
    let release!: (status: number) => void;
    const held = new Promise<number>((resolve) => (release = resolve));
    let flakyCalls = 0;
    webhook.answer = (p) => (p === '/flaky' ? (++flakyCalls === 1 ? 503 : held) : 200);
    const client = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    let acknowledged = false;
    const published = client.publishAsync('flaky/1', 'reading', { qos: 1 }).then(() => (acknowledged = true));
    await eventually(() => flakyCalls === 2, 'the webhook to be tried again after its 503');
    await settle(300);
    expect(acknowledged).toBe(false);
    release(200);
    await published;
    expect(webhook.messages('/flaky')).toMatchObject([{ topic: 'flaky/1', payload: 'reading' }]);
    await endAll(client);
  });

  it('a QoS 1 PUBLISH the webhook keeps refusing is dead-lettered, then acknowledged', async () => {
    webhook.answer = (p) => (p === '/down' ? 500 : 200);
    const client = await connectClient(harness().mqttUrl, { protocolVersion: 5, clientId: 'dead-letter-test' });
    await client.publishAsync('down/1', Buffer.from([0xff, 0xfe]), { qos: 1 });
    const letters = readFileSync(deadLetters, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(letters).toMatchObject([{ deadLetter: { rule: 'down', error: 'HTTP 500' }, message: { topic: 'down/1', payload: '//4=', encoding: 'base64', clientId: 'dead-letter-test' } }]);
    await endAll(client);
  });

  it('a QoS 1 PUBLISH that neither the target nor a dead-letter destination takes is not acknowledged: DISCONNECT 0x89', async () => {
    webhook.answer = (p) => (p === '/down' ? 500 : 200);
    const client = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    let reasonCode: number | undefined;
    client.on('disconnect', (packet) => (reasonCode = packet.reasonCode));
    let acknowledged = false;
    client.publish('lost/1', 'x', { qos: 1 }, (error) => (acknowledged = !error));
    await eventually(() => reasonCode !== undefined, 'the broker to disconnect the publisher');
    expect(reasonCode).toBe(0x89);
    expect(acknowledged).toBe(false);
    // Forced: the PUBLISH is still unacknowledged, and MQTT.js would wait for it.
    await client.endAsync(true);
  });

  it('a QoS 0 PUBLISH is not held up by a failing target', async () => {
    webhook.answer = (p) => (p === '/down' ? 500 : 200);
    const client = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const messages = collect(client);
    await client.subscribeAsync('lost/#');
    await client.publishAsync('lost/2', 'best effort', { qos: 0 });
    await eventually(() => messages.length === 1, 'the QoS 0 message to be delivered');
    expect(client.connected).toBe(true);
    await endAll(client);
  });

  it('republishes the selected fields of hot readings to alerts/<device>, read by MQTT.js', async () => {
    const subscriber = await connectClient(harness().mqttUrl);
    const alerts = collect(subscriber);
    await subscriber.subscribeAsync('alerts/#', { qos: 1 });
    const publisher = await connectClient(harness().mqttUrl);
    await publisher.publishAsync('readings/d7/temp', '{"temp": 35, "unit": "C"}', { qos: 1 });
    await publisher.publishAsync('readings/d8/temp', '{"temp": 20, "unit": "C"}', { qos: 1 });
    await eventually(() => alerts.length === 1, 'the alert');
    await settle(300);
    expect(alerts).toMatchObject([{ topic: 'alerts/d7', payload: '{"temp":35}', qos: 1 }]);
    await endAll(subscriber, publisher);
  });

  it('invokes a Lambda function in-process with the selected fields of each message', async () => {
    const client = await connectClient(harness().mqttUrl, { clientId: 'truck-9' });
    await client.publishAsync('fleet/truck-9/telemetry', '{"speed": 88, "fuel": 0.4}', { qos: 1 });
    await eventually(() => invoked.length === 1, 'the function to be invoked');
    expect(invoked[0]).toMatchObject({ messages: [{ rule: 'fleet', topic: 'fleet/truck-9/telemetry', clientId: 'truck-9', selected: { speed: 88 } }] });
    await endAll(client);
  });

  it('puts records into a Kinesis stream (kinesalite), keyed by topic', async () => {
    const client = await connectClient(harness().mqttUrl);
    await Promise.all(['a', 'b', 'c'].map((device) => client.publishAsync(`kin/${device}`, `reading ${device}`, { qos: 1 })));
    const shard = (await kinesis.send(new DescribeStreamCommand({ StreamName: 'telemetry' }))).StreamDescription!.Shards![0]!.ShardId!;
    const { ShardIterator } = await kinesis.send(new GetShardIteratorCommand({ StreamName: 'telemetry', ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' }));
    const { Records } = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
    const records = (Records ?? []).map((r) => ({ key: r.PartitionKey, body: JSON.parse(Buffer.from(r.Data!).toString()) as Record<string, unknown> }));
    expect(records.map((r) => r.key).sort()).toEqual(['kin/a', 'kin/b', 'kin/c']);
    expect(records.find((r) => r.key === 'kin/a')!.body).toMatchObject({ rule: 'stream', topic: 'kin/a', payload: 'reading a' });
    await endAll(client);
  });

  it("a client's will, published when its connection is lost, reaches the webhook as its message", async () => {
    const before = webhook.messages('/hook').length;
    const client = await connectClient(harness().mqttUrl, { clientId: 'will-d9', will: { topic: 'sensors/d9/temp', payload: Buffer.from('offline'), qos: 1, retain: false } });
    (client.stream as unknown as { destroy(): void }).destroy();
    await eventually(() => webhook.messages('/hook').length === before + 1, 'the will to reach the webhook');
    expect(webhook.messages('/hook').at(-1)).toMatchObject({ topic: 'sensors/d9/temp', payload: 'offline', clientId: 'will-d9', qos: 1 });
    await client.endAsync(true);
  });

  it('has written no dead letter for messages their targets accepted', () => {
    expect(existsSync(deadLetters)).toBe(true);
    const letters = readFileSync(deadLetters, 'utf8').trim().split('\n');
    expect(letters).toHaveLength(1);
  });
});
