/**
 * `npm run bench`'s load generator against the harness, with a count too small to measure
 * anything: the messages arrive and the report has its columns. Speed is never asserted here.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DEPLOYMENT } from '../../bench/cost-model';
import { connackTable, messagesTable } from '../../bench/report';
import { runScenario } from '../../bench/run';
import { connackLatency } from '../../bench/scenarios/connack-latency';
import { qos1OneToOne } from '../../bench/scenarios/one-to-one';
import { inProcessHarnessTarget } from '../../bench/targets/harness-counters';
import { useHarness } from '../support/harness';

const harness = useHarness();

describe('npm run bench, smoke', () => {
  it('qos1-1to1 with 20 messages: all arrive once, in order, with the harness columns filled', async () => {
    const result = await runScenario(inProcessHarnessTarget(harness()), qos1OneToOne, {
      size: 'quick',
      timeLimitMs: 10_000,
      stallMs: 5_000,
      payloadBytes: 64,
      maxPublishes: 20,
      deployment: DEFAULT_DEPLOYMENT,
      runId: `smoke${process.pid}`,
      ownsBroker: true,
    });

    expect(result.error).toBeUndefined();
    expect(result.messages).toMatchObject({ publishes: 20, expected: 20, received: 20, lost: 0, duplicates: 0, outOfOrder: 0 });
    expect(result.messages!.latencyMs.samples).toBe(20);
    // The harness counted the DynamoDB calls and invocations these messages caused.
    expect(result.per!.dynamoDbCalls).toBeGreaterThan(0);
    expect(result.per!.invocations).toBeGreaterThan(0);
    expect(result.cost!.serverless!.total).toBeGreaterThan(0);

    const [header, , row] = messagesTable([result]).split('\n');
    for (const column of ['sent', 'received', 'missing', 'msg/s', 'p50 ms', 'p99 ms', 'DDB calls', 'RCU', 'WCU', 'invocations', '$/M ours', '$/M IoT Core']) {
      expect(header).toContain(column);
    }
    expect(row).toMatch(/^qos1-1to1\s+serverless \(in-process harness\)\s+20\s+20\s+0\s+0\s+0\s/);
  });

  it('connack-latency on a broker it cannot restart: warm CONNACK figures only, and a note saying why there are no cold ones', async () => {
    const result = await runScenario(inProcessHarnessTarget(harness()), connackLatency, {
      size: 'quick',
      timeLimitMs: 10_000,
      stallMs: 5_000,
      payloadBytes: 64,
      deployment: DEFAULT_DEPLOYMENT,
      runId: `smoke${process.pid}`,
      ownsBroker: false,
    });

    expect(result.error).toBeUndefined();
    expect(result.connack!.cold.samples).toBe(0);
    expect(result.connack!.warm.samples).toBe(50);
    expect(result.notes.join(' ')).toContain('no cold figures');
    const [header] = connackTable([result]).split('\n');
    for (const column of ['cold starts', 'cold p50 ms', 'warm CONNECTs', 'warm p50 ms', 'p99 ms']) expect(header).toContain(column);
  });
});
