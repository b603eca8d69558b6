/**
 * The chaos suite: QoS 1 and QoS 2 publishers and subscribers with persistent sessions keep
 * working while the suite injects every fault local/chaos.ts has: the packet handler failing
 * before or after it runs (the listener then closes that connection), store calls failing before
 * or after they run (the handler goes on from the error as from DynamoDB's), publishers' and
 * subscribers' sockets dropped, the listener killed and a new one started on the same ports, and
 * DynamoDB Local restarted with its data. Afterwards, what the clients observed must hold: every
 * QoS 1 message acknowledged to its publisher reached every subscriber at least once, every QoS 2
 * message exactly once, and each publisher's messages arrived in the order it sent them (for
 * QoS 1, the first occurrences).
 *
 * It runs its own DynamoDB Local (in a temporary directory, so it can restart it without
 * disturbing the other test files on the shared one).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaosBrokerConfig, chaosSummary, chaosViolations, runChaosRound, seeded } from '../../local/chaos';
import { startDynamoDbLocal, type RunningDynamoDb } from '../../local/dynamodb-local';
import { freePort } from '../../local/free-port';
import { startHarness, type Harness } from '../../local/harness';

const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100000);
const faults = { handlerFailure: 0, storeFailure: 0, random: seeded(seed) };
let dbPath: string;
let dynamoDb: RunningDynamoDb;
let harness: Harness;

beforeAll(async () => {
  dbPath = await mkdtemp(path.join(os.tmpdir(), 'chaos-dynamodb-'));
  dynamoDb = await startDynamoDbLocal(await freePort(), '127.0.0.1', { dbPath });
  harness = await startHarness({
    dynamoDbEndpoint: dynamoDb.endpoint,
    mqttPort: 0,
    wsPort: 0,
    apigwPort: 0,
    logLevel: 'silent',
    faults,
    sweepIntervalMs: 2000,
    config: chaosBrokerConfig,
  });
});

afterAll(async () => {
  await harness?.stop();
  await dynamoDb?.stop();
  if (dbPath) await rm(dbPath, { recursive: true, force: true });
});

describe('chaos', () => {
  it('nothing acknowledged is lost, QoS 2 arrives exactly once, order holds, through handler and store failures, dropped sockets, a listener kill and a DynamoDB restart', async () => {
    const result = await runChaosRound({
      harness,
      faults,
      handlerFailure: 0.04,
      storeFailure: 0.01,
      durationMs: 15_000,
      run: `${process.pid}-${Date.now()}`,
      dropSubscribers: true,
      killListener: true,
      restartDynamoDb: () => dynamoDb.restart(),
    });
    console.log(`chaos (seed ${seed}): ${chaosSummary(result)}`);

    expect(chaosViolations(result)).toEqual([]);
    expect(result.unsettled).toBe(0);
    expect(result.publishers.reduce((sum, p) => sum + p.acknowledged.size, 0)).toBeGreaterThan(0);
    expect(result.handlerFailures).toBeGreaterThan(0);
    expect(result.storeFailures).toBeGreaterThan(0);
    expect(result.publisherSocketsDropped).toBeGreaterThan(0);
    expect(result.subscriberSocketsDropped).toBeGreaterThan(0);
    expect(result.listenerKills).toBe(1);
    expect(result.dynamoDbRestarts).toBe(1);
  }, 100_000);
});
