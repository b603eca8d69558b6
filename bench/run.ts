/**
 * Runs one scenario against one broker and turns what was measured into a result: throughput,
 * latency, losses, and (against the harness) DynamoDB calls, capacity units, invocations and
 * modeled dollars per delivered message.
 */
import { performance } from 'node:perf_hooks';
import {
  apiGatewayDoorCost,
  apiGatewayIdleCost,
  iotCoreCost,
  iotCoreIdleCost,
  lambdaDuration,
  listenerDoorCost,
  listenerIdleCost,
  type BrokerWork,
  type CostEstimate,
  type Deployment,
  type GatewayMessages,
  type LambdaDuration,
} from './cost-model';
import type { TrafficCounters } from './load/client';
import type { Door } from './load/pipes';
import type { LatencySummary } from './load/deliveries';
import type {
  ConnectionsOutcome,
  ConnectStormOutcome,
  ConnectStormRound,
  FleetFlags,
  FleetOutcome,
  MessagesOutcome,
  MeteredWork,
  Scenario,
  ScenarioContext,
  Size,
} from './scenarios/scenario';
import type { BrokerSnapshot, BrokerTarget, HarnessCounters } from './targets/target';

export interface RunSettings {
  readonly size: Size;
  readonly timeLimitMs: number;
  readonly stallMs: number;
  readonly payloadBytes: number;
  /** Caps each scenario's publishes. */
  readonly maxPublishes?: number;
  readonly deployment: Deployment;
  /** Makes topics and client ids unique to this run. */
  readonly runId: string;
  /** False for a broker the bench did not start. */
  readonly ownsBroker: boolean;
  /** The fleet scenarios' flags; none given by default. */
  readonly fleet?: FleetFlags;
  /**
   * `--rate` was given: the cost model spreads hourly costs over it. Otherwise a fleet's costs are
   * spread over the fleet's own offered deliveries per second.
   */
  readonly rateGiven?: boolean;
  /** Stops the broker and starts it afresh, for a broker the bench started: the new one. */
  readonly restart?: () => Promise<BrokerTarget>;
}

/** Billable work divided by a count of something (CONNECTs, DISCONNECTs). */
export interface WorkPer {
  readonly dynamoDbCalls: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly invocations: number;
}

export type FleetFigures = Omit<FleetOutcome, 'connectWork'> & {
  readonly perConnect?: WorkPer;
  /** The steady rate the cost model spread hourly costs over for this fleet. */
  readonly costDeliveriesPerSecond: number;
};

export type ConnectStormFigures = Omit<ConnectStormRound, 'connectWork' | 'disconnectWork'> & {
  readonly perConnect?: WorkPer;
  readonly perDisconnect?: WorkPer;
};

/** The harness's counters over the measured phase. */
export interface HarnessWork {
  readonly dynamoDbCalls: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly invocations: number;
  readonly handlerMs: number;
  readonly billedMs: number;
  /** Calls to the `@connections` gateway that deliver (every method but `close`), and all calls by method. */
  readonly gatewayDeliveryCalls: number;
  readonly gatewayCalls: Readonly<Record<string, number>>;
  readonly invocationsByRoute: Readonly<Record<string, number>>;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly description: string;
  readonly broker: string;
  readonly messages?: {
    readonly publishes: number;
    readonly expected: number;
    readonly received: number;
    readonly lost: number;
    readonly duplicates: number;
    readonly outOfOrder: number;
    readonly durationMs: number;
    /** The time limit stopped the sending before all publishes went out. */
    readonly timeLimited: boolean;
    readonly deliveriesPerSecond: number;
    readonly latencyMs: LatencySummary;
    readonly connections: number;
    readonly messageBytes: number;
  };
  readonly connections?: {
    readonly count: number;
    /** Connected between the two memory readings, in `connectMs`. */
    readonly measured: number;
    readonly connectMs: number;
    readonly rssBytesPerConnection?: number;
    readonly heapBytesPerConnection?: number;
    readonly pings: number;
    readonly pingMs: number;
  };
  /** The fleet scenarios: connecting, refusals, closes, the offered rate, QoS 1 acknowledged losses. */
  readonly fleet?: FleetFigures;
  /** CONNACK latency from opening the socket: the first CONNECT after each fresh start (cold), and later ones (warm). */
  readonly connack?: { readonly cold: LatencySummary; readonly warm: LatencySummary };
  /** The connect storm, one entry per round. */
  readonly connectStorm?: { readonly rounds: readonly ConnectStormFigures[] };
  /** The clients' packets and bytes, both ways, over the measured phase. */
  readonly traffic?: { readonly packets: number; readonly bytes: number };
  readonly harness?: HarnessWork;
  /** Handler duration per invocation: measured here, modeled, and what the cost model bills. */
  readonly lambda?: LambdaDuration;
  /** The harness's work divided by deliveries (messages) or by pings (connections). */
  readonly per?: { readonly unit: 'delivery' | 'ping'; readonly dynamoDbCalls: number; readonly readUnits: number; readonly writeUnits: number; readonly invocations: number; readonly gatewayDeliveryCalls: number; readonly meanHandlerMs: number };
  /** CPU time over the measured phase: the broker's process, DynamoDB Local's, the load generator's. */
  readonly cpu?: { readonly wallMs: number; readonly brokerMs?: number; readonly dynamoDbLocalMs?: number; readonly generatorMs: number };
  readonly cost?: {
    readonly unit: 'per million deliveries' | 'per million connection-minutes';
    /** Which door `serverless` prices: devices through the NLB and listener, or browsers through API Gateway. */
    readonly door: Door;
    readonly serverless?: CostEstimate;
    readonly iotCore: CostEstimate;
  };
  readonly notes: readonly string[];
  readonly error?: string;
}

interface Measured {
  readonly before: BrokerSnapshot;
  readonly cpuAfter: BrokerSnapshot;
  readonly after: BrokerSnapshot;
  readonly traffic: TrafficCounters;
  readonly generatorMs: number;
  readonly wallMs: number;
}

export async function runScenario(first: BrokerTarget, scenario: Scenario, settings: RunSettings): Promise<ScenarioResult> {
  // The scenario may restart the broker: everything below reads the current one.
  let target = first;
  const { restart } = settings;
  const counters: TrafficCounters = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, framesIn: 0 };
  const base = { scenario: scenario.name, description: scenario.describe(settings.size), broker: target.name };
  let measured: Measured | undefined;
  const ctx: ScenarioContext = {
    endpoint: target.endpoint,
    size: settings.size,
    timeLimitMs: settings.timeLimitMs,
    stallMs: settings.stallMs,
    payloadBytes: settings.payloadBytes,
    ...(settings.maxPublishes === undefined ? {} : { maxPublishes: settings.maxPublishes }),
    counters,
    ownsBroker: settings.ownsBroker,
    topic: (suffix) => `bench/${settings.runId}/${scenario.name}/${suffix}`,
    clientId: (role, index) => `${settings.runId}-${scenario.name}-${role}${index === undefined ? '' : `-${index}`}`,
    measure: async (work) => {
      if (measured) throw new Error(`${scenario.name} measured twice`);
      const before = await target.snapshot();
      const traffic0 = { ...counters };
      const cpu0 = process.cpuUsage();
      const wall0 = performance.now();
      const result = await work();
      const wallMs = performance.now() - wall0;
      const cpu = process.cpuUsage(cpu0);
      const cpuAfter = await target.snapshot();
      // The last acknowledgements' handlers may still run: count them in, then read the counters.
      await target.quiesce();
      const after = await target.snapshot();
      measured = {
        before,
        cpuAfter,
        after,
        traffic: {
          packetsIn: counters.packetsIn - traffic0.packetsIn,
          packetsOut: counters.packetsOut - traffic0.packetsOut,
          bytesIn: counters.bytesIn - traffic0.bytesIn,
          bytesOut: counters.bytesOut - traffic0.bytesOut,
          framesIn: counters.framesIn - traffic0.framesIn,
        },
        generatorMs: (cpu.user + cpu.system) / 1000,
        wallMs,
      };
      return result;
    },
    memory: async () => (await target.snapshot({ gc: true })).memory,
    meter: async (work) => {
      const before = await target.snapshot();
      const value = await work();
      await target.quiesce();
      const after = await target.snapshot();
      const counted = before.counters && after.counters ? difference(before.counters, after.counters) : undefined;
      return { value, ...(counted ? { work: counted } : {}) };
    },
    fleet: settings.fleet ?? {},
    ...(restart
      ? {
          restartBroker: async () => {
            target = await restart();
            return target.endpoint;
          },
        }
      : {}),
  };

  try {
    const outcome = await scenario.run(ctx);
    if (!measured) throw new Error(`${scenario.name} never measured`);
    const door = target.endpoint.door ?? 'tcp';
    switch (outcome.kind) {
      case 'messages': {
        const fleetRate = outcome.fleet && !settings.rateGiven ? outcome.fleet.offeredPerSecond * outcome.fleet.subscribers : 0;
        const deployment = fleetRate > 0 ? { ...settings.deployment, deliveriesPerSecond: fleetRate } : settings.deployment;
        return messagesResult(base, outcome, measured, deployment, door);
      }
      case 'connections':
        return connectionsResult(base, outcome, measured, settings.deployment, door);
      case 'connect-storm':
        return connectStormResult(base, outcome, measured);
      case 'connack-latency':
        return { ...base, connack: { cold: outcome.cold, warm: outcome.warm }, cpu: cpu(measured), notes: outcome.notes };
    }
  } catch (error) {
    return { ...base, notes: [], error: error instanceof Error ? error.message : String(error) };
  } finally {
    await target.quiesce();
  }
}

type Base = Pick<ScenarioResult, 'scenario' | 'description' | 'broker'>;

function messagesResult(base: Base, outcome: MessagesOutcome, measured: Measured, deployment: Deployment, door: Door): ScenarioResult {
  const { log } = outcome;
  const received = log.unique;
  const durationMs = outcome.endedAt - outcome.startedAt;
  const harness = harnessWork(measured);
  const cpuTime = cpu(measured);
  const lambda = harness && lambdaFor(harness, cpuTime, deployment);
  const traffic = { packets: measured.traffic.packetsIn + measured.traffic.packetsOut, bytes: measured.traffic.bytesIn + measured.traffic.bytesOut };
  const costTraffic = {
    publishes: outcome.publishes,
    deliveries: received,
    messageBytes: outcome.messageBytes,
    connections: outcome.connections,
    packets: traffic.packets,
    networkBytes: traffic.bytes,
  };
  return {
    ...base,
    messages: {
      publishes: outcome.publishes,
      expected: outcome.expected,
      received,
      lost: Math.max(0, outcome.expected - received),
      duplicates: log.duplicates,
      outOfOrder: log.outOfOrder,
      durationMs,
      timeLimited: outcome.timeLimited,
      deliveriesPerSecond: durationMs > 0 ? (received * 1000) / durationMs : 0,
      latencyMs: log.latencySummary(),
      connections: outcome.connections,
      messageBytes: outcome.messageBytes,
    },
    traffic,
    ...(harness && lambda ? { harness, lambda, ...(received > 0 ? { per: per('delivery', harness, received) } : {}) } : {}),
    cpu: cpuTime,
    ...(outcome.fleet ? { fleet: fleetFigures(outcome.fleet, deployment) } : {}),
    ...(received > 0
      ? {
          cost: {
            unit: 'per million deliveries',
            door,
            ...(harness && lambda
              ? {
                  serverless:
                    door === 'apigw'
                      ? apiGatewayDoorCost(costTraffic, gatewayMessages(measured), billed(harness, lambda), deployment)
                      : listenerDoorCost(costTraffic, billed(harness, lambda), deployment),
                }
              : {}),
            iotCore: iotCoreCost(costTraffic, deployment),
          },
        }
      : {}),
    notes: [...outcome.notes, ...limitNotes(measured)],
  };
}

function connectionsResult(base: Base, outcome: ConnectionsOutcome, measured: Measured, deployment: Deployment, door: Door): ScenarioResult {
  const { before, after, measuredConnections } = outcome;
  const rssBytesPerConnection = before && after ? (after.rssBytes - before.rssBytes) / measuredConnections : undefined;
  const heapBytesPerConnection =
    before?.heapUsedBytes !== undefined && after?.heapUsedBytes !== undefined
      ? (after.heapUsedBytes - before.heapUsedBytes) / measuredConnections
      : undefined;
  const harness = harnessWork(measured);
  const cpuTime = cpu(measured);
  const lambda = harness && lambdaFor(harness, cpuTime, deployment);
  // The larger of the two: RSS can fall after a collection, the heap leaves out sockets' native memory.
  const bytesPerConnection = Math.max(0, rssBytesPerConnection ?? 0, heapBytesPerConnection ?? 0);
  return {
    ...base,
    connections: {
      count: outcome.connections,
      measured: measuredConnections,
      connectMs: outcome.connectMs,
      ...(rssBytesPerConnection === undefined ? {} : { rssBytesPerConnection }),
      ...(heapBytesPerConnection === undefined ? {} : { heapBytesPerConnection }),
      pings: outcome.pings,
      pingMs: outcome.pingMs,
    },
    traffic: { packets: measured.traffic.packetsIn + measured.traffic.packetsOut, bytes: measured.traffic.bytesIn + measured.traffic.bytesOut },
    ...(harness && lambda ? { harness, lambda, per: per('ping', harness, outcome.pings) } : {}),
    cpu: cpuTime,
    cost: {
      unit: 'per million connection-minutes',
      door,
      ...(harness && lambda && door === 'apigw'
        ? { serverless: apiGatewayIdleCost({ ...billed(harness, lambda), ...gatewayMessages(measured), pings: outcome.pings }, deployment) }
        : {}),
      ...(harness && lambda && door === 'tcp' && (before?.heapUsedBytes !== undefined || rssBytesPerConnection !== undefined)
        ? { serverless: listenerIdleCost(bytesPerConnection, { ...billed(harness, lambda), pings: outcome.pings }, deployment) }
        : {}),
      iotCore: iotCoreIdleCost(),
    },
    notes: [...outcome.notes, ...limitNotes(measured)],
  };
}

function fleetFigures(fleet: FleetOutcome, deployment: Deployment): FleetFigures {
  const { connectWork, ...figures } = fleet;
  return {
    ...figures,
    ...(connectWork && fleet.connected > 0 ? { perConnect: workPer(connectWork, fleet.connected) } : {}),
    costDeliveriesPerSecond: deployment.deliveriesPerSecond,
  };
}

function connectStormResult(base: Base, outcome: ConnectStormOutcome, measured: Measured): ScenarioResult {
  return {
    ...base,
    connectStorm: {
      rounds: outcome.rounds.map(({ connectWork, disconnectWork, ...round }) => ({
        ...round,
        ...(connectWork && round.connected > 0 ? { perConnect: workPer(connectWork, round.connected) } : {}),
        ...(disconnectWork && round.connected > 0 ? { perDisconnect: workPer(disconnectWork, round.connected) } : {}),
      })),
    },
    traffic: { packets: measured.traffic.packetsIn + measured.traffic.packetsOut, bytes: measured.traffic.bytesIn + measured.traffic.bytesOut },
    cpu: cpu(measured),
    notes: outcome.notes,
  };
}

function workPer(work: MeteredWork, n: number): WorkPer {
  return { dynamoDbCalls: work.dynamoDbCalls / n, readUnits: work.readUnits / n, writeUnits: work.writeUnits / n, invocations: work.invocations / n };
}

function lambdaFor(harness: HarnessWork, cpuTime: NonNullable<ScenarioResult['cpu']>, deployment: Deployment): LambdaDuration {
  return lambdaDuration(
    { invocations: harness.invocations, billedMs: harness.billedMs, dynamoDbCalls: harness.dynamoDbCalls, ...(cpuTime.brokerMs === undefined ? {} : { brokerCpuMs: cpuTime.brokerMs }) },
    deployment,
  );
}

/**
 * On the API Gateway door every packet a client sends is one WebSocket message in, and every
 * WebSocket message it receives was one PostToConnection out. (Each is metered in 32 KB blocks:
 * one block each, as long as payloads stay well under 24 KB, 32 KB of base64.)
 */
function gatewayMessages(measured: Measured): GatewayMessages {
  return { messagesIn: measured.traffic.packetsOut, messagesOut: measured.traffic.framesIn };
}

function billed(harness: HarnessWork, lambda: LambdaDuration): BrokerWork {
  return { invocations: harness.invocations, billedMs: lambda.billedMs, readUnits: harness.readUnits, writeUnits: harness.writeUnits };
}

/** One note when AWS's limits refused or throttled anything in the measured phase (local/aws-limits.ts). */
function limitNotes(measured: Measured): string[] {
  const a = measured.after.counters?.limits?.refused ?? {};
  const b = measured.before.counters?.limits?.refused ?? {};
  const refused = Object.entries(a)
    .map(([kind, n]) => [kind, (n ?? 0) - (b[kind as keyof typeof b] ?? 0)] as const)
    .filter(([, n]) => n > 0);
  return refused.length > 0 ? [`AWS limits refused or throttled: ${refused.map(([kind, n]) => `${kind} ${n}`).join(', ')}`] : [];
}

function harnessWork(measured: Measured): HarnessWork | undefined {
  const a = measured.after.counters;
  const b = measured.before.counters;
  if (!a || !b) return undefined;
  return difference(b, a);
}

function difference(b: HarnessCounters, a: HarnessCounters): HarnessWork {
  const gatewayCalls = deltas(b.gateway.calls, a.gateway.calls);
  return {
    dynamoDbCalls: a.dynamoDb.calls - b.dynamoDb.calls,
    readUnits: a.dynamoDb.readUnits - b.dynamoDb.readUnits,
    writeUnits: a.dynamoDb.writeUnits - b.dynamoDb.writeUnits,
    invocations: a.invocations.invocations - b.invocations.invocations,
    handlerMs: a.invocations.durationMs - b.invocations.durationMs,
    billedMs: a.invocations.billedMs - b.invocations.billedMs,
    gatewayDeliveryCalls: Object.entries(gatewayCalls).reduce((sum, [method, n]) => (method === 'close' ? sum : sum + n), 0),
    gatewayCalls,
    invocationsByRoute: deltas(b.invocations.byRoute, a.invocations.byRoute),
  };
}

/** Per-name counts after minus before, leaving out names that did not move. */
function deltas(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  const moved: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) {
    const delta = n - (before[name] ?? 0);
    if (delta > 0) moved[name] = delta;
  }
  return moved;
}

function per(unit: 'delivery' | 'ping', work: HarnessWork, n: number): NonNullable<ScenarioResult['per']> {
  return {
    unit,
    dynamoDbCalls: work.dynamoDbCalls / n,
    readUnits: work.readUnits / n,
    writeUnits: work.writeUnits / n,
    invocations: work.invocations / n,
    gatewayDeliveryCalls: work.gatewayDeliveryCalls / n,
    meanHandlerMs: work.invocations > 0 ? work.handlerMs / work.invocations : 0,
  };
}

function cpu(measured: Measured): NonNullable<ScenarioResult['cpu']> {
  const a = measured.cpuAfter.cpuMs;
  const b = measured.before.cpuMs;
  return {
    wallMs: measured.wallMs,
    ...(a && b ? { brokerMs: a.broker - b.broker } : {}),
    ...(a?.dynamoDbLocal !== undefined && b?.dynamoDbLocal !== undefined ? { dynamoDbLocalMs: a.dynamoDbLocal - b.dynamoDbLocal } : {}),
    generatorMs: measured.generatorMs,
  };
}
