/**
 * The broker's counters, kept in memory by each process (a Lambda container, the harness) and
 * flushed at most every `flushIntervalMs`: one write of everything counted since the last flush
 * (StatsStore.add, one DynamoDB UpdateItem to a random shard), never a write per packet. The
 * $SYS publisher (sys-topics.ts) sums the shards; the Lambda entry points also print each flush
 * as a CloudWatch Embedded Metric Format line (shared/util/emf.ts).
 *
 * Counts are kept across flushes only until written: a process that ends before its next flush
 * (a Lambda container reclaimed while idle) loses what it counted since the last one.
 */

/** Counted and summed across the fleet (the $SYS figures are made of these). */
export const SUMMED_COUNTERS = [
  /** MQTT packets of any type the broker handled from clients. */
  'packetsReceived',
  /** MQTT packets of any type the broker sent to clients. */
  'packetsSent',
  /** PUBLISH packets from clients. */
  'publishReceived',
  /** PUBLISH packets to clients (deliveries and resends). */
  'publishSent',
  /** Connections accepted (CONNACK 0). */
  'connects',
  /** Connections ended (each once, by whoever claims its end). */
  'disconnects',
  /** Routes added minus routes removed: subscriptions in the routing index. */
  'subscriptions',
  /** Topics that gained a retained message minus topics that lost theirs. */
  'retained',
] as const;

/** Counted for CloudWatch only. */
export const METRIC_COUNTERS = [
  /** Deliveries not made: the subscriber's queue full, or the message too large for it. */
  'deliveriesDropped',
  /** Deliveries not made because the message's expiry interval had passed when routed [MQTT-3.3.2-5] (not those that expire queued). */
  'deliveriesExpired',
  /** Batches refused because DynamoDB throttled or could not be reached after retries. */
  'storeUnavailable',
  /** Messages a rule's target accepted (docs/rules.md). */
  'ruleDeliveries',
  /** Messages a rule's target kept refusing, kept by its dead-letter destination. */
  'ruleDeadLetters',
  /** Messages neither a rule's target nor its dead-letter destination took (QoS 1/2: not acknowledged; QoS 0: lost). */
  'ruleFailures',
] as const;

export type SummedCounter = (typeof SUMMED_COUNTERS)[number];
export type MetricCounter = (typeof METRIC_COUNTERS)[number];
export type Counter = SummedCounter | MetricCounter;
export type Counts = Partial<Record<Counter, number>>;

/** What a flush hands on: the counts, and the handler latencies sampled since the last flush. */
export interface StatsFlush {
  readonly counts: Counts;
  readonly latenciesMs: readonly number[];
  /** When this process started counting (epoch ms). */
  readonly startedAt: number;
}

/** Where flushes go: the shared counter items, and (in the cloud) the EMF log line. */
export interface StatsSink {
  add(flush: StatsFlush): Promise<void>;
}

/** The counters as the broker core sees them: counting never waits and never fails. */
export interface StatsCounter {
  count(counter: Counter, n?: number): void;
  /** A handler invocation's duration. */
  latency(ms: number): void;
}

/** EMF takes at most 100 values of one metric in one line; more are sampled down to that. */
export const MAX_LATENCY_SAMPLES = 100;

export class BrokerStats implements StatsCounter {
  private counts: Counts = {};
  private latencies: number[] = [];
  private latencySeen = 0;
  private lastFlush: number;
  private flushing: Promise<void> | undefined;
  readonly startedAt: number;

  constructor(
    private readonly sink: StatsSink,
    private readonly options: { readonly flushIntervalMs: number; readonly now?: () => number; readonly random?: () => number },
  ) {
    this.startedAt = this.now();
    this.lastFlush = this.startedAt;
  }

  count(counter: Counter, n = 1): void {
    if (n !== 0) this.counts[counter] = (this.counts[counter] ?? 0) + n;
  }

  latency(ms: number): void {
    this.latencySeen += 1;
    if (this.latencies.length < MAX_LATENCY_SAMPLES) this.latencies.push(ms);
    else {
      // Reservoir sampling: every latency of the interval equally likely to be kept.
      const slot = Math.floor((this.options.random ?? Math.random)() * this.latencySeen);
      if (slot < MAX_LATENCY_SAMPLES) this.latencies[slot] = ms;
    }
  }

  /** Counted and not flushed yet (for tests and the console). */
  pending(): Counts {
    return { ...this.counts };
  }

  /** Flushes if the interval has passed since the last flush and anything was counted; the end of every invocation calls it. */
  async flushIfDue(): Promise<void> {
    if (this.now() - this.lastFlush < this.options.flushIntervalMs) return;
    await this.flush();
  }

  /**
   * Writes what was counted, now. A failed write puts its counts back, to go with the next
   * flush; its latencies are dropped (they describe an interval already past).
   */
  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.lastFlush = this.now();
    const counts = this.counts;
    const latenciesMs = this.latencies;
    if (Object.keys(counts).length === 0 && latenciesMs.length === 0) return;
    this.counts = {};
    this.latencies = [];
    this.latencySeen = 0;
    this.flushing = this.sink
      .add({ counts, latenciesMs, startedAt: this.startedAt })
      .catch((error: unknown) => {
        for (const [counter, n] of Object.entries(counts) as Array<[Counter, number]>) this.count(counter, n);
        throw error;
      })
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

/**
 * Sinks in turn (the counter items, then the EMF line): one that fails stops the rest, so a
 * flush that goes back to be counted again was not printed either.
 */
export function sinks(...all: readonly StatsSink[]): StatsSink {
  return {
    add: async (flush) => {
      for (const sink of all) await sink.add(flush);
    },
  };
}
