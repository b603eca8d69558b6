/**
 * What one HTTP publish costs (`npx tsx bench/http-publish.ts [--count N] [--payload BYTES]`):
 * the local harness, a user with a password, one MQTT subscriber online at QoS 1, then N
 * publishes `POST /topics/…?qos=1` with Basic credentials, four at a time, after a warm-up of 10
 * (so the container's password check is cached, as a warm Lambda's is). It counts what the
 * broker did for the measured ones: invocations, DynamoDB calls and capacity units (the broker's
 * tables and the Security table's), and prices them per million messages at list prices, beside
 * AWS IoT Core's HTTPS publish. Bounded: N defaults to 200 (at most 5,000).
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { freePort } from '../local/free-port';
import { startHarness } from '../local/harness';
import { hashPassword } from '../shared/security/password';
import { AWS_LIST_PRICES, DEFAULT_DEPLOYMENT, lambdaDuration, meteredUnits } from './cost-model';

const { values } = parseArgs({ options: { count: { type: 'string' }, payload: { type: 'string' } } });
const count = Math.min(5_000, Number(values.count ?? 200));
const payloadBytes = Number(values.payload ?? 100);
/** The http-publish function's memory in the stack (infra/constructs/broker-functions.ts). */
const LAMBDA_MEMORY_MB = 512;
const WARM_UP = 10;
const PARALLEL = 4;

const harness = await startHarness({
  mqttPort: 0,
  wsPort: 0,
  apigwPort: 0,
  httpPort: 0,
  dynamoDbPort: await freePort(),
  ...(process.env.DYNAMODB_ENDPOINT ? { dynamoDbEndpoint: process.env.DYNAMODB_ENDPOINT } : {}),
  logLevel: 'error',
  security: { allowAnonymous: false },
});
try {
  await harness.securityStore.putUser({ username: 'bench', passwordHash: await hashPassword('bench-password') });
  const root = `bench/http/${Date.now()}`;
  const subscriber = await mqtt.connectAsync(harness.mqttUrl, { username: 'bench', password: 'bench-password', protocolVersion: 5, reconnectPeriod: 0 });
  let received = 0;
  subscriber.on('message', () => (received += 1));
  await subscriber.subscribeAsync(`${root}/#`, { qos: 1 });

  const authorization = `Basic ${Buffer.from('bench:bench-password').toString('base64')}`;
  const body = Buffer.alloc(payloadBytes, 'x');
  const publish = async (i: number): Promise<void> => {
    const response = await fetch(`${harness.httpUrl}/topics/${root}/d${i % 10}?qos=1`, { method: 'POST', headers: { authorization }, body });
    if (response.status !== 200) throw new Error(`publish ${i}: HTTP ${response.status} ${await response.text()}`);
  };
  const run = async (from: number, to: number): Promise<void> => {
    let next = from;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < to) await publish(next++);
    }));
  };
  const until = async (n: number): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (received < n) {
      if (Date.now() > deadline) throw new Error(`only ${received} of ${n} messages reached the subscriber`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  await run(0, WARM_UP);
  await until(WARM_UP);
  const meters = () => ({
    store: { ...harness.store.meter },
    security: { ...harness.securityStore.meter },
    invocations: harness.meters.invocations.snapshot(),
  });
  const before = meters();
  const cpu = process.cpuUsage();
  const started = Date.now();
  await run(WARM_UP, WARM_UP + count);
  await until(WARM_UP + count);
  const seconds = (Date.now() - started) / 1000;
  const after = meters();
  // This process's CPU (the broker's and the clients' both; DynamoDB Local is another process): an upper bound on the broker's.
  const { user, system } = process.cpuUsage(cpu);
  await subscriber.endAsync();

  const per = (a: number, b: number) => (a - b) / count;
  const httpInvocations = per(after.invocations.byRoute['http-publish'] ?? 0, before.invocations.byRoute['http-publish'] ?? 0);
  const allInvocations = per(after.invocations.invocations, before.invocations.invocations);
  const calls = per(after.store.calls + after.security.calls, before.store.calls + before.security.calls);
  // As npm run bench prices it: the smaller of the wall time measured here and a model of 5 ms a DynamoDB call, one after another, plus the CPU.
  const duration = lambdaDuration(
    {
      invocations: allInvocations * count,
      billedMs: after.invocations.billedMs - before.invocations.billedMs,
      dynamoDbCalls: calls * count,
      brokerCpuMs: (user + system) / 1000,
    },
    DEFAULT_DEPLOYMENT,
  );
  const billedMs = duration.billedMs / Math.max(allInvocations * count, 1);
  const readUnits = per(after.store.readUnits + after.security.readUnits, before.store.readUnits + before.security.readUnits);
  const writeUnits = per(after.store.writeUnits + after.security.writeUnits, before.store.writeUnits + before.security.writeUnits);

  const prices = AWS_LIST_PRICES;
  const million = 1_000_000;
  const items = {
    'API Gateway HTTP API': 1.0 * meteredUnits(payloadBytes, 512 * 1024),
    'Lambda requests': allInvocations * prices.lambda.perMillionRequests,
    'Lambda duration': allInvocations * (billedMs / 1000) * (LAMBDA_MEMORY_MB / 1024) * prices.lambda.perGbSecond * million,
    'DynamoDB reads': readUnits * prices.dynamoDb.perMillionReadUnits,
    'DynamoDB writes': writeUnits * prices.dynamoDb.perMillionWriteUnits,
  };
  const total = Object.values(items).reduce((sum, value) => sum + value, 0);
  const iotPublish = prices.iotCore.perMillionMessages * meteredUnits(payloadBytes, prices.iotCore.messageMeterBytes);
  const dollars = (value: number) => `$${value.toFixed(3)}`;
  const lines = [
    `HTTP publish, QoS 1, ${payloadBytes}-byte payload, one subscriber online at QoS 1: ${count} publishes in ${seconds.toFixed(1)} s (${PARALLEL} at a time, on this machine)`,
    `  per message: ${allInvocations.toFixed(2)} invocations (http-publish ${httpInvocations.toFixed(2)}; the rest the subscriber's PUBACKs), ${billedMs.toFixed(1)} ms billed each`,
    `               (measured ${duration.measuredMsPerInvocation.toFixed(1)} ms against DynamoDB Local; modeled ${duration.modeledMsPerInvocation ?? '-'} ms: ${DEFAULT_DEPLOYMENT.dynamoDbLatencyMs} ms a DynamoDB call and the CPU)`,
    `               ${calls.toFixed(2)} DynamoDB calls, ${readUnits.toFixed(2)} read units, ${writeUnits.toFixed(2)} write units`,
    `  $ per million messages (list prices, Lambda at ${LAMBDA_MEMORY_MB} MB):`,
    ...Object.entries(items).map(([name, value]) => `    ${name.padEnd(22)} ${dollars(value)}`),
    `    ${'total'.padEnd(22)} ${dollars(total)}`,
    `  AWS IoT Core HTTPS publish: ${dollars(iotPublish)} per million (${prices.iotCore.messageMeterBytes / 1024} KB metered), ${dollars(2 * iotPublish)} with its delivery to one MQTT subscriber`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await harness.stop();
}
