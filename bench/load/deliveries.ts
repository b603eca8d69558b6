/**
 * What subscribers receive, checked and timed: every payload carries the time it was sent and a
 * sequence number, so each delivery gives a latency, and duplicates, losses and order per
 * subscriber and topic can be counted.
 */
import { performance } from 'node:perf_hooks';
import type { IPublishPacket } from 'mqtt-packet';

const STAMP_BYTES = 12;

/** A payload of `size` bytes (at least 12) stamped with the current time and `seq`. */
export function stampedPayload(size: number, seq: number): Buffer {
  const payload = Buffer.alloc(Math.max(size, STAMP_BYTES), 0x61);
  payload.writeDoubleLE(performance.now(), 0);
  payload.writeUInt32LE(seq, 8);
  return payload;
}

export function readStamp(payload: Buffer): { sentAt: number; seq: number } | undefined {
  if (payload.length < STAMP_BYTES) return undefined;
  return { sentAt: payload.readDoubleLE(0), seq: payload.readUInt32LE(8) };
}

/** Wakes whoever waits for the next delivery or acknowledgement. */
export class Progress {
  private waiters: Array<(progressed: boolean) => void> = [];

  notify(): void {
    if (this.waiters.length === 0) return;
    for (const wake of this.waiters.splice(0)) wake(true);
  }

  /** True when something happened within `ms`, false when nothing did. */
  wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      const wake = (progressed: boolean): void => {
        clearTimeout(timer);
        resolve(progressed);
      };
      this.waiters.push(wake);
    });
  }
}

export class DeliveryLog {
  readonly progress = new Progress();
  /** Distinct messages received, over all subscribers. */
  unique = 0;
  duplicates = 0;
  /** A message that arrived after a later one from the same topic, at the same subscriber. */
  outOfOrder = 0;
  firstReceivedAt = 0;
  lastReceivedAt = 0;
  private readonly latencies: number[] = [];

  /**
   * @param latencyOrigin measure latency from this instant instead of each message's send time
   * (a retained message's send time says nothing about how fast it was replayed).
   */
  constructor(private readonly latencyOrigin?: number) {}

  /** The handler for one subscriber's messages. */
  subscriber(): (packet: IPublishPacket, receivedAt: number) => void {
    let seen = new Uint8Array(1024);
    const lastSeqByTopic = new Map<string, number>();
    return (packet, receivedAt) => {
      const stamp = readStamp(packet.payload as Buffer);
      if (!stamp) return;
      if (stamp.seq >= seen.length) {
        const grown = new Uint8Array(Math.max(seen.length * 2, stamp.seq + 1));
        grown.set(seen);
        seen = grown;
      }
      if (seen[stamp.seq]) {
        this.duplicates += 1;
      } else {
        seen[stamp.seq] = 1;
        this.unique += 1;
        this.latencies.push(receivedAt - (this.latencyOrigin ?? stamp.sentAt));
      }
      const last = lastSeqByTopic.get(packet.topic);
      if (last !== undefined && stamp.seq < last) this.outOfOrder += 1;
      else lastSeqByTopic.set(packet.topic, stamp.seq);
      if (this.firstReceivedAt === 0) this.firstReceivedAt = receivedAt;
      this.lastReceivedAt = receivedAt;
      this.progress.notify();
    };
  }

  latencySummary(): LatencySummary {
    return summarize(this.latencies);
  }
}

export interface LatencySummary {
  readonly samples: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentiles, in milliseconds. */
export function summarize(values: readonly number[]): LatencySummary {
  if (values.length === 0) return { samples: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const sorted = Float64Array.from(values).sort();
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { samples: sorted.length, p50: rank(0.5), p99: rank(0.99), max: sorted[sorted.length - 1]! };
}
