/** What a benchmark scenario is given, and what it hands back to be reported. */
import type { Endpoint, TrafficCounters } from '../load/client';
import type { DeliveryLog } from '../load/deliveries';
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

export type ScenarioOutcome = MessagesOutcome | ConnectionsOutcome;

export interface Scenario {
  readonly name: string;
  /**
   * Runs on a broker started afresh (when the bench starts it): memory that earlier scenarios'
   * connections left to the allocator would otherwise hide what new connections take.
   */
  readonly freshBroker?: boolean;
  describe(size: Size): string;
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
