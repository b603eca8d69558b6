/**
 * A fleet the way IoT users run one: many devices, each publishing now and then on its own
 * topic, into a few backend subscribers of one wildcard filter. Connecting the devices is a phase
 * of its own (its DynamoDB calls are counted per CONNECT); the measured phase is the telemetry
 * and its drain. At QoS 1 every publish the broker acknowledged must reach every subscriber.
 */
import { performance } from 'node:perf_hooks';
import type { BenchClient } from '../load/client';
import { DeliveryLog, readStamp } from '../load/deliveries';
import { closedByBroker, connectFleet, connectMany, disconnectAll, subscribeEach } from '../load/fleet';
import { publishTelemetry } from '../load/telemetry';
import { publishPacketBytes } from './publish';
import { n, type FleetFlags, type MessagesOutcome, type Scenario, type ScenarioContext } from './scenario';

export interface FleetSettings {
  readonly devices: number;
  readonly intervalSeconds: number;
  readonly qos: 0 | 1;
  readonly depth: 5 | 7;
  readonly subscribers: number;
  readonly persistent: boolean;
  readonly parallel: number;
}

type Preset = Partial<Pick<FleetSettings, 'qos' | 'depth'>>;

export const FLEET_DEFAULTS = { devices: 1_000, intervalSeconds: 2, subscribers: 1, parallel: 50 } as const;
/** The measured phase: long enough for every device to publish several times. */
const TIME_LIMIT_SECONDS = { quick: 20, full: 60 } as const;
/** Longer than the measured phase, so that no device has to ping during it. */
const DEVICE_KEEP_ALIVE_SECONDS = 300;
/** As long as MQTT.js waits for a CONNACK by default: a slow CONNACK is counted in the latency, not as a failure. */
export const CONNACK_TIMEOUT_MS = 30_000;
/** Connecting the fleet may take this many time limits. */
const CONNECT_TIME_LIMITS = 3;

/** A preset fixes its QoS and depth (the flags cannot change them) and keeps the subscribers' sessions unless `--no-persistent`. */
export function fleetSettings(flags: FleetFlags, preset?: Preset): FleetSettings {
  return {
    devices: flags.devices ?? FLEET_DEFAULTS.devices,
    intervalSeconds: flags.intervalSeconds ?? FLEET_DEFAULTS.intervalSeconds,
    qos: preset?.qos ?? flags.qos ?? 0,
    depth: preset?.depth ?? flags.depth ?? 5,
    subscribers: flags.subscribers ?? FLEET_DEFAULTS.subscribers,
    persistent: flags.persistent ?? preset !== undefined,
    parallel: flags.parallel ?? FLEET_DEFAULTS.parallel,
  };
}

/** Device `i`'s topic, and the filter matching every device's: `<base>/<i>/telemetry` (depth 5 under `bench/<run>/<scenario>`), or `<base>/<i>/a/b/telemetry` (depth 7). */
export function fleetTopics(ctx: Pick<ScenarioContext, 'topic'>, depth: 5 | 7): { topic: (i: number) => string; filter: string } {
  const leaf = depth === 7 ? 'a/b/telemetry' : 'telemetry';
  return { topic: (i) => ctx.topic(`${i}/${leaf}`), filter: ctx.topic(`+/${leaf}`) };
}

function describe(s: FleetSettings): string {
  const rate = s.devices / s.intervalSeconds;
  return (
    `${n(s.devices)} devices, each a QoS ${s.qos} publish every ${s.intervalSeconds} s on its own topic (depth ${s.depth}; ${n(rate)} msg/s offered), ` +
    `${s.subscribers} ${s.persistent ? 'persistent ' : ''}subscriber${s.subscribers === 1 ? '' : 's'} of the + filter, ${s.parallel} connecting at a time`
  );
}

function fleet(name: string, preset?: Preset): Scenario {
  return {
    name,
    timeLimitSeconds: TIME_LIMIT_SECONDS,
    describe: (_size, flags = {}) => describe(fleetSettings(flags, preset)),
    run: (ctx) => runFleet(ctx, fleetSettings(ctx.fleet, preset)),
  };
}

export const fleetScenario = fleet('fleet');
export const fleetQos0 = fleet('fleet-qos0', { qos: 0, depth: 5 });
export const fleetQos1 = fleet('fleet-qos1', { qos: 1, depth: 5 });
export const fleetQos0Depth7 = fleet('fleet-qos0-depth7', { qos: 0, depth: 7 });
export const fleetQos1Depth7 = fleet('fleet-qos1-depth7', { qos: 1, depth: 7 });

/** Which sequence numbers one subscriber received. */
class Received {
  private seen = new Uint8Array(1024);

  add(seq: number): void {
    if (seq >= this.seen.length) {
      const grown = new Uint8Array(Math.max(this.seen.length * 2, seq + 1));
      grown.set(this.seen);
      this.seen = grown;
    }
    this.seen[seq] = 1;
  }

  has(seq: number): boolean {
    return this.seen[seq] === 1;
  }
}

export async function runFleet(ctx: ScenarioContext, s: FleetSettings): Promise<MessagesOutcome> {
  const { topic, filter } = fleetTopics(ctx, s.depth);
  const log = new DeliveryLog();
  const subscriberId = (i: number): string => ctx.clientId('backend', i);
  const subscribers = await connectMany(ctx.endpoint, s.subscribers, (i) => ({ clientId: subscriberId(i), clean: !s.persistent }), ctx.counters);
  const received = subscribers.map(() => new Received());
  let devices: BenchClient[] = [];
  try {
    subscribers.forEach((subscriber, i) => {
      const record = log.subscriber();
      subscriber.onMessage = (packet, at) => {
        record(packet, at);
        const stamp = readStamp(packet.payload as Buffer);
        if (stamp) received[i]!.add(stamp.seq);
      };
    });
    await subscribeEach(subscribers, () => filter, s.qos);

    let connectMs = 0;
    const { value: connects, work: connectWork } = await ctx.meter(async () => {
      const started = performance.now();
      const result = await connectFleet(
        ctx.endpoint,
        s.devices,
        s.parallel,
        (i) => ({ clientId: ctx.clientId('dev', i), keepalive: DEVICE_KEEP_ALIVE_SECONDS, timeoutMs: CONNACK_TIMEOUT_MS }),
        ctx.counters,
        started + ctx.timeLimitMs * CONNECT_TIME_LIMITS,
      );
      connectMs = performance.now() - started;
      return result;
    });
    const indexes = connects.clients.flatMap((client, i) => (client ? [i] : []));
    devices = indexes.map((i) => connects.clients[i]!);

    const result = await ctx.measure(() =>
      publishTelemetry({
        devices,
        topic: (j) => topic(indexes[j]!),
        qos: s.qos,
        intervalMs: s.intervalSeconds * 1000,
        count: ctx.maxPublishes ?? Number.POSITIVE_INFINITY,
        payloadBytes: ctx.payloadBytes,
        fanOut: subscribers.length,
        timeLimitMs: ctx.timeLimitMs,
        stallMs: ctx.stallMs,
        log,
      }),
    );
    const closed = closedByBroker(subscribers, 'subscriber', closedByBroker(devices, 'device'));

    let acknowledgedLost = 0;
    if (s.qos === 1) {
      for (let seq = 0; seq < result.sent; seq++) {
        if (!result.acked[seq]) continue;
        for (const r of received) if (!r.has(seq)) acknowledgedLost += 1;
      }
    }
    const sendingMs = Math.max(1, result.sendingEndedAt - result.startedAt);
    return {
      kind: 'messages',
      publishes: result.sent,
      expected: result.sent * subscribers.length,
      log,
      startedAt: result.startedAt,
      endedAt: result.endedAt,
      timeLimited: result.timeLimited,
      connections: devices.length + subscribers.length,
      messageBytes: publishPacketBytes(topic(0), ctx.payloadBytes, s.qos),
      fleet: {
        devices: s.devices,
        connected: devices.length,
        connectMs,
        refused: connects.refused,
        failed: connects.failed,
        closedByBroker: closed,
        ...(connectWork ? { connectWork } : {}),
        offeredPerSecond: devices.length / s.intervalSeconds,
        sentPerSecond: (result.sent * 1000) / sendingMs,
        qos: s.qos,
        subscribers: subscribers.length,
        ...(s.qos === 1 ? { acknowledged: result.acknowledged, acknowledgedLost } : {}),
      },
      notes: [
        ...(result.cutShort ? [result.cutShort] : []),
        ...(connects.untried > 0 ? [`${connects.untried} of ${s.devices} devices not tried within ${(ctx.timeLimitMs * CONNECT_TIME_LIMITS) / 1000} s of connecting`] : []),
        ...(result.skipped > 0 ? [`${result.skipped} turns skipped: the device's connection was closed`] : []),
      ],
    };
  } finally {
    await disconnectAll([...devices, ...subscribers]);
    if (s.persistent) await endSessions(ctx, subscribers.length, subscriberId);
  }
}

/** Connects each persistent subscriber's id once more with Clean Session, which ends its session. */
async function endSessions(ctx: ScenarioContext, count: number, clientId: (i: number) => string): Promise<void> {
  const clients = await connectMany(ctx.endpoint, count, (i) => ({ clientId: clientId(i), clean: true }), ctx.counters);
  await disconnectAll(clients);
}
