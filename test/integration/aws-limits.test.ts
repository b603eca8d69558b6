/**
 * AWS's limits in the harness (local/aws-limits.ts) refuse as AWS refuses: DynamoDB's
 * per-partition throughput (tables and indexes, units as DynamoDB bills them), its item,
 * transaction and batch sizes; Lambda's payload and concurrency; API Gateway's @connections
 * rate. And what the broker does today when they bite (the last describe block).
 */
import { randomBytes } from 'node:crypto';
import {
  ApiGatewayManagementApiClient,
  LimitExceededException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { TooManyRequestsException } from '@aws-sdk/client-lambda';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiGatewayEmulator } from '../../local/apigw-emulator';
import { awsLimits, describeAwsLimits, LAMBDA_SYNC_PAYLOAD_BYTES } from '../../local/aws-limits';
import { enforceDynamoDbLimits } from '../../local/dynamodb-limits';
import { LambdaLimits } from '../../local/lambda-limits';
import { localCredentials, LOCAL_REGION } from '../../local/local-aws';
import { LimitMeter } from '../../local/meters';
import { StoreUnavailableError } from '../../shared/broker/ports';
import { createDynamoStore } from '../../shared/store/create-dynamo-store';
import { createTables } from '../../shared/store/create-tables';
import { dynamoDbClientConfig, translateStoreErrors } from '../../shared/store/store-errors';
import { localTableNames, TIMER_INDEX } from '../../shared/store/tables';
import { connectClient, connectThroughApiGateway, collect, eventually, settle } from '../support/clients';
import { useHarness } from '../support/harness';
import { createJsonLogger } from '../../shared/util/logger';

const tables = localTableNames('lim-' + randomBytes(4).toString('hex'));
const endpoint = (): string => inject('dynamoDbEndpoint');
/** At 0.01: 30 read and 10 write units a second per partition key. */
const limits = awsLimits({ scale: 0.01 });

beforeAll(async () => {
  const admin = new DynamoDBClient({ endpoint: endpoint(), region: LOCAL_REGION, credentials: localCredentials });
  await createTables(admin, tables);
  admin.destroy();
});

/** A document client built as functions/runtime.ts builds it, with the limits on, and a clock the test moves. */
function limitedClient(options: { attempts?: number; translate?: boolean } = {}) {
  const meter = new LimitMeter();
  const clock = { now: 1_000_000 };
  const raw = new DynamoDBClient(
    dynamoDbClientConfig(
      { endpoint: endpoint(), region: LOCAL_REGION, credentials: localCredentials },
      { maxAttempts: options.attempts ?? 1, connectionTimeoutMs: 1000, requestTimeoutMs: 10_000 },
    ),
  );
  enforceDynamoDbLimits(raw, { limits, tables, meter, now: () => clock.now });
  const doc = DynamoDBDocumentClient.from(options.translate ? translateStoreErrors(raw) : raw);
  return { doc, meter, clock };
}

const failure = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => undefined, (error: unknown) => error);
const session = (clientId: string, sk: string, extra: Record<string, unknown> = {}) => ({ TableName: tables.sessions, Item: { clientId, sk, ...extra } });

describe('DynamoDB per-partition throughput', () => {
  it('throttles a partition key past its write units in the second, not the other keys, and serves it again a second later', async () => {
    const { doc, meter, clock } = limitedClient();
    for (let i = 0; i < 10; i++) await doc.send(new PutCommand(session('hot-w', `q#${i}`)));
    const error = await failure(doc.send(new PutCommand(session('hot-w', 'q#10'))));
    expect(error).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(error).toMatchObject({ name: 'ProvisionedThroughputExceededException', $fault: 'client', ThrottlingReasons: [{ reason: 'TableWriteKeyRangeThroughputExceeded' }] });
    // nothing written by the throttled call
    expect((await doc.send(new GetCommand({ TableName: tables.sessions, Key: { clientId: 'hot-w', sk: 'q#10' }, ConsistentRead: true }))).Item).toBeUndefined();
    await doc.send(new PutCommand(session('cold-w', 'q#0')));
    clock.now += 1001;
    await doc.send(new PutCommand(session('hot-w', 'q#10')));
    expect(meter.snapshot().refused['dynamodb.throttled']).toBe(1);
  });

  it('throttles writes in flight together, not only after earlier ones have finished: 30 at once to one key, 10 pass', async () => {
    const { doc, meter } = limitedClient();
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => doc.send(new PutCommand(session('together', `q#${i}`))).then(() => 'written', (error: unknown) => (error as Error).name)),
    );
    expect(results.filter((r) => r === 'written')).toHaveLength(10);
    expect(results.filter((r) => r === 'ProvisionedThroughputExceededException')).toHaveLength(20);
    expect(meter.snapshot().refused['dynamodb.throttled']).toBe(20);
  });

  it('bills a write by the KB and a transaction twice', async () => {
    const { doc } = limitedClient();
    // an item of 4.5 KB: five units
    for (let i = 0; i < 2; i++) await doc.send(new PutCommand(session('kb', `q#${i}`, { data: 'x'.repeat(4500) })));
    expect(await failure(doc.send(new PutCommand(session('kb', 'q#2'))))).toBeInstanceOf(ProvisionedThroughputExceededException);
    // 5 transactions of one small item: ten units
    for (let i = 0; i < 5; i++) await doc.send(new TransactWriteCommand({ TransactItems: [{ Put: session('tx', `q#${i}`) }] }));
    expect(await failure(doc.send(new PutCommand(session('tx', 'q#5'))))).toBeInstanceOf(ProvisionedThroughputExceededException);
  });

  it('bills a strongly consistent read by the 4 KB, an eventually consistent one half', async () => {
    const { doc } = limitedClient();
    await doc.send(new PutCommand(session('hot-r', 'big', { data: 'x'.repeat(5000) }))); // two read units a read
    for (let i = 0; i < 15; i++) await doc.send(new GetCommand({ TableName: tables.sessions, Key: { clientId: 'hot-r', sk: 'big' }, ConsistentRead: true }));
    const error = await failure(doc.send(new GetCommand({ TableName: tables.sessions, Key: { clientId: 'hot-r', sk: 'big' }, ConsistentRead: true })));
    expect(error).toMatchObject({ name: 'ProvisionedThroughputExceededException', ThrottlingReasons: [{ reason: 'TableReadKeyRangeThroughputExceeded' }] });
    await doc.send(new PutCommand(session('hot-r2', 'big', { data: 'x'.repeat(5000) })));
    for (let i = 0; i < 30; i++) await doc.send(new GetCommand({ TableName: tables.sessions, Key: { clientId: 'hot-r2', sk: 'big' } }));
    expect(await failure(doc.send(new GetCommand({ TableName: tables.sessions, Key: { clientId: 'hot-r2', sk: 'big' } })))).toBeInstanceOf(
      ProvisionedThroughputExceededException,
    );
  });

  it("counts the Sessions table's timer index by its key value: its writes throttle the table's, its reads are throttled", async () => {
    const { doc } = limitedClient();
    const timer = `t-${randomBytes(3).toString('hex')}`;
    // Ten clients, ten partitions of the table, one of the index.
    for (let i = 0; i < 10; i++) await doc.send(new PutCommand(session(`idx-${i}`, 'session', { timer, timerAt: i })));
    const error = await failure(doc.send(new PutCommand(session('idx-10', 'session', { timer, timerAt: 10 }))));
    expect(error).toMatchObject({ name: 'ProvisionedThroughputExceededException', ThrottlingReasons: [{ reason: 'IndexWriteKeyRangeThroughputExceeded' }] });
    // An index Query is eventually consistent: half a unit, 60 in the second.
    const query = new QueryCommand({
      TableName: tables.sessions,
      IndexName: TIMER_INDEX,
      KeyConditionExpression: '#timer = :t AND timerAt <= :now',
      ExpressionAttributeNames: { '#timer': 'timer' },
      ExpressionAttributeValues: { ':t': timer, ':now': 0 },
    });
    for (let i = 0; i < 60; i++) await doc.send(query);
    expect(await failure(doc.send(query))).toMatchObject({ ThrottlingReasons: [{ reason: 'IndexReadKeyRangeThroughputExceeded' }] });
  });

  it('40 persistent sessions going offline in one second all detach: their timers spread over the index (10 writes a second per key here)', async () => {
    const { doc, meter, clock } = limitedClient({ translate: true });
    const store = createDynamoStore({ client: doc, tables, now: () => clock.now });
    const clients = Array.from({ length: 40 }, (_, i) => `detach-${i}`);
    for (const clientId of clients) {
      await store.sessions.openSession({ clientId, connectionId: `${clientId}-c`, protocolVersion: 5, cleanStart: true, holdMs: 1_000, receiveMaximum: 65535, topicAliasMaximum: 0 });
      // A second per session: the opening writes do not count against the detaching second.
      clock.now += 1_000;
    }
    const before = meter.snapshot().refused['dynamodb.throttled'] ?? 0;
    // One after another, the clock standing still: each write meets what the earlier ones consumed.
    const results: string[] = [];
    for (const clientId of clients) results.push(await store.sessions.closeSession(clientId, `${clientId}-c`, false, 3600).then(String, (error: unknown) => String(error)));
    expect(results).toEqual(clients.map(() => 'closed'));
    expect(meter.snapshot().refused['dynamodb.throttled'] ?? 0).toBe(before);
  });

  it('is retried by the SDK as a throttle, and reaches the broker as the store being busy', async () => {
    const { doc, meter } = limitedClient({ attempts: 3, translate: true });
    for (let i = 0; i < 10; i++) await doc.send(new PutCommand(session('retried', `q#${i}`)));
    const error = await failure(doc.send(new PutCommand(session('retried', 'q#10'))));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).kind).toBe('busy');
    // the clock stands still: every attempt is throttled
    expect(meter.snapshot().refused['dynamodb.throttled']).toBe(3);
  });

  it('hands the throttled keys of a batch back as unprocessed, and throttles a batch whose keys all are', async () => {
    const { doc, meter } = limitedClient();
    for (let i = 0; i < 10; i++) await doc.send(new PutCommand(session('batch-hot', `q#${i}`)));
    await doc.send(new PutCommand(session('batch-cold', 'q#0')));
    const got = await doc.send(
      new BatchGetCommand({
        RequestItems: { [tables.sessions]: { Keys: [{ clientId: 'batch-hot', sk: 'q#0' }, { clientId: 'batch-cold', sk: 'q#0' }], ConsistentRead: true } },
      }),
    );
    // reads are not throttled yet: the hot key has used its write units only
    expect(got.Responses?.[tables.sessions]).toHaveLength(2);
    const written = await doc.send(
      new BatchWriteCommand({ RequestItems: { [tables.sessions]: [{ PutRequest: session('batch-hot', 'q#10') }, { PutRequest: session('batch-cold', 'q#1') }] } }),
    );
    expect(written.UnprocessedItems?.[tables.sessions]).toEqual([{ PutRequest: session('batch-hot', 'q#10') }]);
    const cold = await doc.send(new GetCommand({ TableName: tables.sessions, Key: { clientId: 'batch-cold', sk: 'q#1' }, ConsistentRead: true }));
    expect(cold.Item).toBeDefined();
    const all = await failure(doc.send(new BatchWriteCommand({ RequestItems: { [tables.sessions]: [{ PutRequest: session('batch-hot', 'q#11') }] } })));
    expect(all).toBeInstanceOf(ProvisionedThroughputExceededException);

    // one read unit used by the BatchGetItem above, 29 more here: the second's 30
    for (let i = 0; i < 29; i++) await doc.send(new GetCommand({ TableName: tables.sessions, Key: { clientId: 'batch-hot', sk: 'q#0' }, ConsistentRead: true }));
    const read = await doc.send(
      new BatchGetCommand({
        RequestItems: { [tables.sessions]: { Keys: [{ clientId: 'batch-hot', sk: 'q#1' }, { clientId: 'batch-cold', sk: 'q#0' }], ConsistentRead: true } },
      }),
    );
    expect(read.Responses?.[tables.sessions]?.map((item) => item.clientId)).toEqual(['batch-cold']);
    expect(read.UnprocessedKeys?.[tables.sessions]).toEqual({ Keys: [{ clientId: 'batch-hot', sk: 'q#1' }], ConsistentRead: true });
    expect(meter.snapshot().refused['dynamodb.unprocessed']).toBe(2);
  });
});

describe('DynamoDB sizes', () => {
  it('refuses an item over 400 KB, a transaction over 100 items or 4 MB, a batch over 25 writes, with ValidationException', async () => {
    const { doc, meter } = limitedClient();
    const big = 'x'.repeat(400 * 1024);
    expect(await failure(doc.send(new PutCommand(session('size', 'big', { data: big }))))).toMatchObject({ name: 'ValidationException', $fault: 'client' });
    const many = Array.from({ length: 101 }, (_, i) => ({ Put: session(`many-${i}`, 'q') }));
    expect(await failure(doc.send(new TransactWriteCommand({ TransactItems: many })))).toMatchObject({ name: 'ValidationException' });
    const heavy = Array.from({ length: 11 }, (_, i) => ({ Put: session(`heavy-${i}`, 'q', { data: 'x'.repeat(390 * 1024) }) }));
    expect(await failure(doc.send(new TransactWriteCommand({ TransactItems: heavy })))).toMatchObject({
      name: 'ValidationException',
      message: 'Transaction request cannot be larger than 4 MB',
    });
    const writes = Array.from({ length: 26 }, (_, i) => ({ PutRequest: session(`w-${i}`, 'q') }));
    expect(await failure(doc.send(new BatchWriteCommand({ RequestItems: { [tables.sessions]: writes } })))).toMatchObject({ name: 'ValidationException' });
    expect(meter.snapshot().refused['dynamodb.refused']).toBe(4);
  });

  it('answers a BatchGetItem with at most 16 MB, the rest as unprocessed keys', async () => {
    const { doc } = limitedClient();
    const keys = Array.from({ length: 44 }, (_, i) => ({ clientId: `large-${i}`, sk: 'q' }));
    const data = 'x'.repeat(390 * 1024);
    for (const key of keys) await doc.send(new PutCommand({ TableName: tables.sessions, Item: { ...key, data } }));
    const out = await doc.send(new BatchGetCommand({ RequestItems: { [tables.sessions]: { Keys: keys } } }));
    const returned = out.Responses?.[tables.sessions] ?? [];
    const unprocessed = out.UnprocessedKeys?.[tables.sessions]?.Keys ?? [];
    expect(returned.length).toBe(42); // 42 x 390 KB fit in 16 MB
    expect(returned.length + unprocessed.length).toBe(44);
  }, 60_000);
});

describe('Lambda', () => {
  const meter = new LimitMeter();
  const lambda = new LambdaLimits(awsLimits({ lambdaConcurrency: 2 }).lambda, meter);

  it('refuses a request over 6 MB with RequestEntityTooLargeException (413) before the handler runs, and a response over 6 MB', async () => {
    let ran = 0;
    const echo = lambda.wrap(async (event: { data: string }) => {
      ran++;
      return event;
    });
    const fits = 'x'.repeat(LAMBDA_SYNC_PAYLOAD_BYTES - '{"data":""}'.length);
    await expect(echo({ data: fits })).resolves.toEqual({ data: fits });
    const error = await failure(echo({ data: fits + 'x' }));
    expect(error).toMatchObject({ name: 'RequestEntityTooLargeException', $metadata: { httpStatusCode: 413 } });
    expect(ran).toBe(1);
    const grow = lambda.wrap(async (event: { data: string }) => ({ data: event.data + event.data }));
    expect(await failure(grow({ data: 'x'.repeat(LAMBDA_SYNC_PAYLOAD_BYTES / 2) }))).toMatchObject({ name: 'Function.ResponseSizeTooLarge' });
    expect(meter.snapshot().refused['lambda.payloadTooLarge']).toBe(2);
  });

  it('refuses an invocation over the account concurrency with TooManyRequestsException (429), across functions', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = lambda.wrap(() => held);
    const other = lambda.wrap(async () => 'ran');
    const running = [slow(undefined), slow(undefined)];
    const error = await failure(other(undefined));
    expect(error).toBeInstanceOf(TooManyRequestsException);
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 429 }, Reason: 'ConcurrentInvocationLimitExceeded' });
    release();
    await Promise.all(running);
    await expect(other(undefined)).resolves.toBe('ran');
    expect(meter.snapshot().refused['lambda.throttled']).toBe(1);
  });
});

describe('API Gateway @connections', () => {
  const meter = new LimitMeter();
  const emulator = new ApiGatewayEmulator({ host: '127.0.0.1', port: 0, log: createJsonLogger('error'), connectionsRequestsPerSecond: 3, limitMeter: meter });
  let management: ApiGatewayManagementApiClient;
  beforeAll(async () => {
    const { managementEndpoint } = await emulator.start();
    management = new ApiGatewayManagementApiClient({ endpoint: managementEndpoint, region: LOCAL_REGION, credentials: localCredentials, maxAttempts: 1 });
  });
  afterAll(async () => {
    management.destroy();
    await emulator.stop();
  });

  it('answers requests over the account rate with 429 LimitExceededException', async () => {
    const post = () => failure(management.send(new PostToConnectionCommand({ ConnectionId: 'gone', Data: Buffer.from('x') })));
    const answers = [await post(), await post(), await post(), await post()];
    expect(answers.slice(0, 3).map((error) => (error as Error).name)).toEqual(['GoneException', 'GoneException', 'GoneException']);
    expect(answers[3]).toBeInstanceOf(LimitExceededException);
    expect(answers[3]).toMatchObject({ $metadata: { httpStatusCode: 429 } });
    expect(meter.snapshot().refused['apigw.throttled']).toBe(1);
  });
});

describe('npm start', () => {
  it('names the limits in force, scaled', () => {
    const lines = describeAwsLimits(awsLimits({ scale: 0.01, lambdaConcurrency: 4 })).join('\n');
    expect(lines).toContain('30 RCU/s and 10 WCU/s per partition key (AWS_LIMITS_SCALE=0.01)');
    expect(lines).toContain('4 concurrent invocations, 6,291,456-byte request and response');
    expect(lines).toContain('100 @connections requests/s (AWS_LIMITS_SCALE=0.01)');
  });
});

/** What the broker does today when the limits bite: what a client observes. */
describe('the broker under the limits', () => {
  const harness = useHarness({ config: { fanoutPartSize: 20 }, apigw: { connectionsRequestsPerSecond: 2 } });
  const clients: MqttClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
  });

  it('a 250 KB message to 41 subscribers in parts of 20: the payload travels once per part, every subscriber gets it once, the publisher is acknowledged', async () => {
    const topic = `big/${randomBytes(3).toString('hex')}`;
    const subscribers: MqttClient[] = [];
    for (let i = 0; i < 41; i++) {
      const subscriber = await connectClient(harness().mqttUrl);
      await subscriber.subscribeAsync(topic, { qos: 1 });
      subscribers.push(subscriber);
    }
    clients.push(...subscribers);
    const received = subscribers.map((subscriber) => collect(subscriber));
    const before = harness().meters.limits.snapshot().refused['lambda.payloadTooLarge'] ?? 0;
    const publisher = await connectClient(harness().mqttUrl);
    clients.push(publisher);
    // 250 KB, 333 KB in base64: with a copy per delivery, a part of twenty would make a 6.7 MB job.
    await publisher.publishAsync(topic, Buffer.alloc(250 * 1024, 1), { qos: 1 });
    await eventually(() => received.every((messages) => messages.length > 0), 'every subscriber to get the message', 30_000);
    await settle(300);
    expect(received.map((messages) => messages.length)).toEqual(subscribers.map(() => 1));
    expect(received[40]![0]!.payload.length).toBe(250 * 1024);
    expect(harness().meters.limits.snapshot().refused['lambda.payloadTooLarge'] ?? 0).toBe(before);
  }, 120_000);

  it('a throttled @connections delivery does not close the client; it is counted, retried and delivered', async () => {
    const topic = `rate/${randomBytes(3).toString('hex')}`;
    const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1100));
    // Three browsers, each connected and subscribed within its own second (CONNACK and SUBACK are @connections calls too).
    const subscribers: Array<{ got: ReturnType<typeof collect>; closed: () => boolean }> = [];
    for (let i = 0; i < 3; i++) {
      const subscriber = await connectThroughApiGateway(harness().apigwUrl);
      clients.push(subscriber);
      let closed = false;
      subscriber.on('close', () => (closed = true));
      const got = collect(subscriber);
      await subscriber.subscribeAsync(topic);
      subscribers.push({ got, closed: () => closed });
      await pause();
    }
    const before = harness().meters.limits.snapshot().refused['apigw.throttled'] ?? 0;
    const publisher = await connectClient(harness().mqttUrl);
    clients.push(publisher);
    // Three deliveries at once, two calls a second allowed.
    await publisher.publishAsync(topic, 'm', { qos: 0 });
    await eventually(() => (harness().meters.limits.snapshot().refused['apigw.throttled'] ?? 0) > before, 'a throttled delivery');
    // The 429 is retried (CONNECTIONS_RETRY, up to 6 s): every subscriber gets the message.
    await eventually(() => subscribers.every(({ got }) => got.length > 0), 'every subscriber to get the message', 8000);
    expect(subscribers.map(({ closed }) => closed())).toEqual([false, false, false]);
  }, 60_000);
});

describe('the broker over the Lambda concurrency', () => {
  // No concurrency at all, as for a function whose reserved concurrency is 0: every invocation is throttled.
  const harness = useHarness({ awsLimits: { lambdaConcurrency: 0 } });

  it('a CONNECT throttled past the Lambda client\'s retries is held and offered again, not closed: CONNACK once concurrency is back', async () => {
    harness().setLambdaConcurrency(0);
    const before = harness().meters.limits.snapshot().refused['lambda.throttled'] ?? 0;
    let closed = false;
    const connecting = connectClient(harness().mqttUrl, { connectTimeout: 30_000 }).then((client) => {
      client.on('close', () => (closed = true));
      return client;
    });
    // Past the client's three attempts: the listener holds the CONNECT and tries again.
    await eventually(() => (harness().meters.limits.snapshot().refused['lambda.throttled'] ?? 0) - before > 3, 'more throttled attempts than the Lambda client makes', 20_000);
    expect(harness().meters.invocations.snapshot().invocations).toBe(0);
    harness().setLambdaConcurrency(1000);
    const client = await connecting;
    const got = collect(client);
    await client.subscribeAsync('throttled/echo', { qos: 1 });
    await client.publishAsync('throttled/echo', 'after the throttle', { qos: 1 });
    await eventually(() => got.length === 1, 'its own message back');
    expect(closed).toBe(false);
    await client.endAsync();
  }, 60_000);

  it('a close throttled past the Lambda client\'s retries is reported again, not dropped: the will goes out once concurrency is back', async () => {
    harness().setLambdaConcurrency(1000);
    const watcher = await connectClient(harness().mqttUrl);
    const got = collect(watcher);
    await watcher.subscribeAsync('throttled/will', { qos: 1 });
    const device = await connectClient(harness().mqttUrl, { clientId: 'throttled-will', will: { topic: 'throttled/will', payload: Buffer.from('gone'), qos: 1, retain: false } });
    harness().setLambdaConcurrency(0);
    const before = harness().meters.limits.snapshot().refused['lambda.throttled'] ?? 0;
    device.stream.destroy(); // the network drops: the will is due
    // Longer than the Lambda client's three attempts take (waits of at most 1 and 2 s).
    await settle(4_000);
    expect((harness().meters.limits.snapshot().refused['lambda.throttled'] ?? 0) - before).toBeGreaterThan(3);
    expect(got).toEqual([]);
    harness().setLambdaConcurrency(1000);
    await eventually(() => got.length === 1, 'the will', 20_000);
    expect(got[0]).toMatchObject({ topic: 'throttled/will', payload: 'gone' });
    await watcher.endAsync();
  }, 60_000);
});
