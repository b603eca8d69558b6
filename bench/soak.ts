/**
 * `npm run soak -- --minutes N`: the chaos mix (local/chaos.ts), with every fault it has, in rounds
 * for N minutes against a harness of its own (its own DynamoDB Local, keeping its tables in a
 * temporary directory so it can be restarted, behind a cuttable proxy), reporting after each
 * round what went through, whether anything acknowledged was lost, reordered or duplicated at
 * QoS 2, and the memory of the process that runs the listener and the handlers, so growth shows.
 * Exits 1 if any round broke a guarantee.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { localCredentials, LOCAL_REGION } from '../local/local-aws';
import { chaosBrokerConfig, chaosSummary, chaosViolations, runChaosRound, seeded } from '../local/chaos';
import { startDynamoDbLocal } from '../local/dynamodb-local';
import { freePort } from '../local/free-port';
import { startHarness } from '../local/harness';
import { TcpProxy } from '../local/tcp-proxy';
import { outPartitions } from '../shared/store/session-items';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '5' }, 'round-seconds': { type: 'string', default: '30' }, seed: { type: 'string' } },
});
const minutes = Number(values.minutes);
const roundMs = Number(values['round-seconds']) * 1000;
if (!(minutes > 0) || !(roundMs > 0)) {
  console.error('error: --minutes and --round-seconds take positive numbers, e.g. npm run soak -- --minutes 10');
  process.exit(2);
}
const seed = Number(values.seed ?? Date.now() % 100000);

const dbPath = await mkdtemp(path.join(os.tmpdir(), 'soak-dynamodb-'));
const dynamoDb = await startDynamoDbLocal(await freePort(), '127.0.0.1', { dbPath });
const target = new URL(dynamoDb.endpoint);
const proxy = await new TcpProxy(target.hostname, Number(target.port)).start();
const faults = { handlerFailure: 0, storeFailure: 0, random: seeded(seed) };
const harness = await startHarness({ dynamoDbEndpoint: proxy.endpoint, mqttPort: 0, wsPort: 0, apigwPort: 0, logLevel: 'silent', faults, sweepIntervalMs: 2000, config: chaosBrokerConfig });

const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: dynamoDb.endpoint, region: LOCAL_REGION, credentials: localCredentials }));
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const deadline = Date.now() + minutes * 60_000;
let failed = false;
console.log(`soak: ${minutes} min in rounds of ${roundMs / 1000} s, seed ${seed}; memory of the listener + handlers process`);
try {
  for (let round = 1; Date.now() < deadline; round++) {
    const result = await runChaosRound({
      harness,
      faults,
      handlerFailure: 0.04,
      storeFailure: 0.01,
      durationMs: roundMs,
      run: `soak-${seed}-${round}`,
      dropSubscribers: true,
      killListener: true,
      restartDynamoDb: () => dynamoDb.restart(),
      cutDynamoDb: proxy,
    });
    globalThis.gc?.();
    const memory = process.memoryUsage();
    const violations = chaosViolations(result);
    const elapsed = Math.round((Date.now() - (deadline - minutes * 60_000)) / 1000);
    console.log(`round ${round} (${elapsed} s): ${chaosSummary(result)}; ${violations.length} violations; rss ${mb(memory.rss)} MB, heap ${mb(memory.heapUsed)} MB`);
    for (const violation of violations) console.log(`  ${violation}`);
    // What the broker holds for a subscriber that missed messages: its session's counters and holds, its queue and what is in flight.
    for (const s of result.subscribers.filter((sub) => violations.some((v) => v.includes(`-> ${sub.name}:`)))) {
      // The session partition, and the in-flight shards its out# records live in.
      const partitions = await Promise.all(
        [s.clientId, ...outPartitions(s.clientId)].map((key) =>
          documents.send(new QueryCommand({ TableName: harness.tables.sessions, KeyConditionExpression: 'clientId = :c', ExpressionAttributeValues: { ':c': key } })),
        ),
      );
      const items = partitions.flatMap((out) => out.Items ?? []);
      const session = items.find((item) => item.sk === 'session');
      const kinds = (prefix: string) => items.filter((item) => String(item.sk).startsWith(prefix)).length;
      const { connectionId, heldBy, heldUntil, queued, inflight } = session ?? {};
      console.log(`  ${s.name} session: ${JSON.stringify({ connectionId, heldBy, heldUntil, queued, inflight, now: Date.now() })}, ${kinds('q#')} queued, ${kinds('out#')} in flight`);
    }
    if (violations.length > 0 || result.unsettled > 0) failed = true;
  }
} finally {
  await harness.stop();
  await proxy.stop();
  await dynamoDb.stop();
  await rm(dbPath, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
