/** What a benchmark scenario is given, and what it hands back to be reported. */
import type { Endpoint, TrafficCounters } from '../load/client';
import type { DeliveryLog, LatencySummary } from '../load/deliveries';
import type { MemorySample } from '../targets/target';

export type Size = 'quick' | 'full';

export interface ScenarioContext {
  readonly endpoint: Endpoint;
  readonly size: Size;
  /** Bounds the measured phase's sending, and again its draining. */
  readonly timeLimitMs: number;
  /** Ends a phase in which nothing arrives for this long. */
  readonly stallMs: number;
  readonly payloadBytes: number;
  /** Caps each scenario's publishes (and retained messages), for a short run. */
  readonly maxPublishes?: number;
  /** Every client's packets and bytes, both ways. */
  readonly counters: TrafficCounters;
  /** False for a broker the bench did not start: then scenarios clean up what they leave (retained messages). */
  readonly ownsBroker: boolean;
  /** A topic unique to this run and scenario. */
  topic(suffix: string): string;
  /** A client id unique to this run and scenario. */
  clientId(role: string, index?: number): string;
  /** Runs `work` as the measured interval: the broker's counters and the clients' traffic are read before and after. */
  measure<T>(work: () => Promise<T>): Promise<T>;
  /** The broker's memory now, after a garbage collection where the broker allows one. */
  memory(): Promise<MemorySample | undefined>;
  /**
   * Runs `work` and counts what the broker did for it, once it finished (the harness only; no
   * `work` for another broker). For a phase besides the measured one: a fleet's CONNECTs.
   */
  meter<T>(work: () => Promise<T>): Promise<{ readonly value: T; readonly work?: MeteredWork }>;
  /** The fleet flags, each undefined when not given. */
  readonly fleet: FleetFlags;
  /**
   * Stops the broker and starts it afresh (a broker the bench started only): its endpoint. The
   * context's measure, meter and memory read the new one from then on.
   */
  readonly restartBroker?: () => Promise<Endpoint>;
}

/** The harness's billable work over a phase. */
export interface MeteredWork {
  readonly dynamoDbCalls: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly invocations: number;
}

/** `--devices`, `--interval`, `--qos`, `--depth`, `--subscribers`, `--persistent`, `--parallel`. */
export interface FleetFlags {
  readonly devices?: number;
  readonly intervalSeconds?: number;
  readonly qos?: 0 | 1;
  readonly depth?: 5 | 7;
  readonly subscribers?: number;
  readonly persistent?: boolean;
  readonly parallel?: number;
}

/** Messages from publishers to subscribers, checked and timed. */
export interface MessagesOutcome {
  readonly kind: 'messages';
  readonly publishes: number;
  /** Deliveries a correct broker makes for those publishes. */
  readonly expected: number;
  readonly log: DeliveryLog;
  /** The measured phase, from the first publish (or SUBSCRIBE) to the last delivery or acknowledgement. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** The time limit stopped the sending before all publishes went out: the normal end against a slow broker. */
  readonly timeLimited: boolean;
  readonly connections: number;
  /** One message's PUBLISH packet, in bytes (what IoT Core and API Gateway meter). */
  readonly messageBytes: number;
  /** The fleet scenarios only. */
  readonly fleet?: FleetOutcome;
  readonly notes: readonly string[];
}

/** Connections held open: what each costs the broker in memory and in keep-alive. */
export interface ConnectionsOutcome {
  readonly kind: 'connections';
  readonly connections: number;
  /** Those that connected between the two memory readings, in `connectMs`. */
  readonly measuredConnections: number;
  readonly connectMs: number;
  readonly before?: MemorySample;
  readonly after?: MemorySample;
  /** PINGREQs sent (one per connection, from a sample of them), the measured phase. */
  readonly pings: number;
  readonly pingMs: number;
  readonly notes: readonly string[];
}

/** What a fleet of devices saw besides its messages: connecting, refusals, closes, the rate offered. */
export interface FleetOutcome {
  readonly devices: number;
  readonly connected: number;
  readonly connectMs: number;
  /** CONNACKs that refused, by return code, and connections that failed otherwise, by reason. */
  readonly refused: Readonly<Record<string, number>>;
  readonly failed: Readonly<Record<string, number>>;
  /** Devices (or subscribers) the broker closed during the measured phase and its drain, by reason. */
  readonly closedByBroker: Readonly<Record<string, number>>;
  /** The harness's work over the devices' CONNECTs. */
  readonly connectWork?: MeteredWork;
  /** Publishes per second the devices were scheduled to send, and sent. */
  readonly offeredPerSecond: number;
  readonly sentPerSecond: number;
  readonly qos: 0 | 1;
  readonly subscribers: number;
  /** QoS 1: publishes the broker acknowledged, and deliveries of those that never arrived at a subscriber. */
  readonly acknowledged?: number;
  readonly acknowledgedLost?: number;
}

/** Devices connecting all at once: how fast, and what each CONNECT and DISCONNECT costs. */
export interface ConnectStormOutcome {
  readonly kind: 'connect-storm';
  readonly rounds: readonly ConnectStormRound[];
  readonly notes: readonly string[];
}

export interface ConnectStormRound {
  readonly devices: number;
  readonly parallel: number;
  readonly connected: number;
  readonly connectMs: number;
  /** From opening the socket to the CONNACK, per connection that was accepted. */
  readonly connackMs: LatencySummary;
  readonly refused: Readonly<Record<string, number>>;
  readonly failed: Readonly<Record<string, number>>;
  readonly disconnectMs: number;
  readonly connectWork?: MeteredWork;
  readonly disconnectWork?: MeteredWork;
}

/** CONNACK latency: the first CONNECT after each fresh start of the broker, and later ones. */
export interface ConnackLatencyOutcome {
  readonly kind: 'connack-latency';
  readonly cold: LatencySummary;
  readonly warm: LatencySummary;
  readonly notes: readonly string[];
}

export type ScenarioOutcome = MessagesOutcome | ConnectionsOutcome | ConnectStormOutcome | ConnackLatencyOutcome;

export interface Scenario {
  readonly name: string;
  /**
   * Runs on a broker started afresh (when the bench starts it): memory that earlier scenarios'
   * connections left to the allocator would otherwise hide what new connections take.
   */
  readonly freshBroker?: boolean;
  /**
   * Needs a broker that has had no client yet (the bench restarts it if it has, and warms it up
   * only for the scenarios after this one); may restart it itself (ScenarioContext.restartBroker).
   */
  readonly coldBroker?: boolean;
  /** The measured phase's time limit when `--time-limit` is not given, if not the bench's default. */
  readonly timeLimitSeconds?: Readonly<Record<Size, number>>;
  describe(size: Size, fleet?: FleetFlags): string;
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
}

/** A scenario's count of publishes, under the run's cap. */
export function publishes(ctx: Pick<ScenarioContext, 'maxPublishes'>, count: number): number {
  return Math.min(count, ctx.maxPublishes ?? count);
}

/** A count for a description: 10,000. */
export function n(value: number): string {
  return value.toLocaleString('en-US');
}
