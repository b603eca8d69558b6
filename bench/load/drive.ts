/**
 * One publisher sending a bounded number of messages, bounded in time: as fast as the broker
 * delivers them with at most `window` publishes outstanding (closed loop), or at a fixed rate.
 * Ends when every expected delivery arrived, or when nothing arrived for `stallMs`.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { QoS } from 'mqtt-packet';
import type { BenchClient } from './client';
import { stampedPayload, type DeliveryLog } from './deliveries';

export interface DriveOptions {
  readonly publisher: BenchClient;
  readonly topic: (seq: number) => string;
  readonly qos: QoS;
  readonly retain?: boolean;
  readonly count: number;
  readonly payloadBytes: number;
  /** Deliveries each publish causes; 0 when nobody is subscribed (then acknowledgements pace the loop). */
  readonly fanOut: number;
  /** Publishes outstanding at most: sent and not yet delivered everywhere (or, with no fan-out, not acknowledged). */
  readonly window: number;
  /** Publishes per second; unset = as fast as the window allows. */
  readonly ratePerSecond?: number;
  readonly timeLimitMs: number;
  readonly stallMs: number;
  readonly log: DeliveryLog;
}

export interface DriveResult {
  readonly sent: number;
  readonly acknowledged: number;
  readonly startedAt: number;
  /** The last delivery or acknowledgement. */
  readonly endedAt: number;
  /** The time limit ended the sending before `count` publishes (the normal end against a slow broker). */
  readonly timeLimited: boolean;
  /** Why deliveries or acknowledgements stopped before all arrived, if they did. */
  readonly cutShort?: string;
}

const BURST = 256;
const MAX_DRAIN_MS = 60_000;

export async function drive(options: DriveOptions): Promise<DriveResult> {
  const { publisher, qos, count, fanOut, window, log, stallMs } = options;
  const startedAt = performance.now();
  const deadline = startedAt + options.timeLimitMs;
  let sent = 0;
  let acknowledged = 0;
  let lastAcknowledgedAt = 0;
  let failed = '';
  let cutShort: string | undefined;
  let timeLimited = false;

  // The first delivery may wait for a whole queue of invocations: give it longer.
  const stallFor = (): number => (log.unique === 0 && acknowledged === 0 ? stallMs * 3 : stallMs);
  const outstanding = (): number => (fanOut > 0 ? Math.ceil((sent * fanOut - log.unique) / fanOut) : sent - acknowledged);
  const allowed = (now: number): number => {
    let n = Math.min(count - sent, window - outstanding(), BURST);
    if (qos > 0) n = Math.min(n, publisher.receiveMaximum - publisher.unacknowledged);
    if (options.ratePerSecond) n = Math.min(n, Math.floor(((now - startedAt) * options.ratePerSecond) / 1000) + 1 - sent);
    return n;
  };

  while (sent < count) {
    const now = performance.now();
    if (publisher.closed || failed) {
      cutShort = `publisher closed: ${failed || publisher.closeReason}`;
      break;
    }
    if (now > deadline) {
      timeLimited = true;
      break;
    }
    const n = allowed(now);
    if (n <= 0) {
      if (options.ratePerSecond && outstanding() < window) {
        await sleep(Math.max(1, startedAt + ((sent + 1) * 1000) / options.ratePerSecond - now));
        continue;
      }
      if (!(await log.progress.wait(stallFor()))) {
        cutShort = `stalled: nothing delivered or acknowledged for ${stallFor()} ms after ${sent} publishes`;
        break;
      }
      continue;
    }
    publisher.batch(() => {
      for (let i = 0; i < n; i++) {
        const seq = sent++;
        const done = publisher.publish(options.topic(seq), stampedPayload(options.payloadBytes, seq), qos, options.retain ?? false);
        if (qos > 0) {
          done.then(
            () => {
              acknowledged += 1;
              lastAcknowledgedAt = performance.now();
              log.progress.notify();
            },
            (error: Error) => {
              failed = error.message;
              log.progress.notify();
            },
          );
        }
      }
    });
    await yieldToIo();
  }

  // Drain: wait for what is still on its way, as long as it keeps coming.
  const drainDeadline = performance.now() + Math.max(options.timeLimitMs, MAX_DRAIN_MS);
  const expected = sent * fanOut;
  while ((log.unique < expected || (qos > 0 && acknowledged < sent)) && !failed) {
    if (performance.now() > drainDeadline) {
      cutShort ??= `still draining ${Math.max(options.timeLimitMs, MAX_DRAIN_MS)} ms after the last publish`;
      break;
    }
    if (!(await log.progress.wait(stallFor()))) {
      cutShort ??= `stalled: nothing delivered or acknowledged for ${stallFor()} ms`;
      break;
    }
  }
  if (failed) cutShort ??= `publisher closed: ${failed}`;
  const endedAt = Math.max(log.lastReceivedAt, lastAcknowledgedAt, startedAt);
  return { sent, acknowledged, startedAt, endedAt, timeLimited, ...(cutShort ? { cutShort } : {}) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
