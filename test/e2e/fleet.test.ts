/**
 * `npm run bench`'s fleet scenarios, small, against the harness: devices publishing on their own
 * topics into wildcard subscribers with persistent sessions, and a connect storm. Asserts what
 * the broker guarantees (every acknowledged QoS 1 message reaches every subscriber, in each
 * device's order; everyone connects), never how fast.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DEPLOYMENT } from '../../bench/cost-model';
import { connectStormTable, fleetTable } from '../../bench/report';
import { runScenario, type RunSettings } from '../../bench/run';
import { connectStorm } from '../../bench/scenarios/connect-storm';
import { fleetQos1Depth7 } from '../../bench/scenarios/fleet';
import { inProcessHarnessTarget } from '../../bench/targets/harness-counters';
import { useHarness } from '../support/harness';

const harness = useHarness();

const settings = (fleet: RunSettings['fleet'], maxPublishes?: number): RunSettings => ({
  size: 'quick',
  // Bounds the sending and, again, the drain: generous, so that on a busy machine only a lost message is missing at the end.
  timeLimitMs: 60_000,
  stallMs: 30_000,
  payloadBytes: 64,
  ...(maxPublishes === undefined ? {} : { maxPublishes }),
  deployment: DEFAULT_DEPLOYMENT,
  runId: `fleet${process.pid}`,
  ownsBroker: true,
  fleet,
});

describe('npm run bench, fleet scenarios', () => {
  it('fleet-qos1-depth7, 10 devices into 2 persistent wildcard subscribers: every acknowledged message arrives at each, in each device\'s order', async () => {
    // 30 publishes: each device three times, 20 per second offered.
    const result = await runScenario(inProcessHarnessTarget(harness()), fleetQos1Depth7, settings({ devices: 10, intervalSeconds: 0.5, subscribers: 2 }, 30));

    expect(result.error).toBeUndefined();
    const fleet = result.fleet!;
    expect(fleet).toMatchObject({ devices: 10, connected: 10, qos: 1, subscribers: 2 });
    expect(fleet.refused).toEqual({});
    expect(fleet.failed).toEqual({});
    expect(result.messages!.publishes).toBe(30);
    // QoS 1: what the broker acknowledged it delivers, to every subscriber whose filter matches.
    expect(fleet.acknowledged).toBe(30);
    expect(fleet.acknowledgedLost).toBe(0);
    expect(result.messages).toMatchObject({ expected: 60, received: 60, lost: 0, outOfOrder: 0 });
    // The harness counted the CONNECTs' DynamoDB calls, and each message's.
    expect(fleet.perConnect!.dynamoDbCalls).toBeGreaterThan(0);
    expect(result.per!.dynamoDbCalls).toBeGreaterThan(0);

    const [header, , row] = fleetTable([result]).split('\n');
    for (const column of ['devices', 'connects/s', 'refused', 'closed', 'offered/s', 'delivered/s', 'acked lost', 'DDB/CONNECT', '$/M IoT Core']) {
      expect(header).toContain(column);
    }
    expect(row).toMatch(/^fleet-qos1-depth7\s+serverless \(in-process harness\)\s+10\/10\s/);
  }, 150_000);

  it('connect-storm, 50 devices 25 at a time: every device connects and disconnects', async () => {
    const result = await runScenario(inProcessHarnessTarget(harness()), connectStorm, settings({ devices: 50, parallel: 25 }));

    expect(result.error).toBeUndefined();
    const rounds = result.connectStorm!.rounds;
    expect(rounds).toHaveLength(1);
    expect(rounds[0]).toMatchObject({ devices: 50, parallel: 25, connected: 50 });
    expect(rounds[0]!.refused).toEqual({});
    expect(rounds[0]!.failed).toEqual({});
    expect(rounds[0]!.connackMs.samples).toBe(50);
    expect(rounds[0]!.perConnect!.dynamoDbCalls).toBeGreaterThan(0);
    expect(rounds[0]!.perDisconnect!.dynamoDbCalls).toBeGreaterThan(0);
    expect(connectStormTable([result]).split('\n')[2]).toMatch(/^connect-storm\s+serverless \(in-process harness\)\s+25\s+50\/50\s/);
  }, 60_000);
});
