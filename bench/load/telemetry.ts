/**
 * A fleet's telemetry: every device publishes once per interval on its own topic, the devices'
 * turns spread evenly over the interval (device k % N sends the k-th message, one every
 * interval / N), so the broker sees a steady offered rate rather than bursts in lockstep. Open
 * loop: a slow broker does not slow the devices down. Ends when every expected delivery (and, at
 * QoS 1, every PUBACK) arrived, or when nothing arrived for `stallMs`, or after a drain as long as
 * the time limit.
 */
import { performance } from 'node:perf_hooks';
import type { BenchClient } from './client';
import { stampedPayload, type DeliveryLog } from './deliveries';

export interface TelemetryOptions {
  /** The devices that connected. */
  readonly devices: readonly BenchClient[];
  /** Device `i`'s topic (its index in `devices`). */
  readonly topic: (device: number) => string;
  readonly qos: 0 | 1;
  readonly intervalMs: number;
  /** Publishes at most, over all devices. */
  readonly count: number;
  readonly payloadBytes: number;
  /** Deliveries each publish causes (the subscribers). */
  readonly fanOut: number;
  readonly timeLimitMs: number;
  readonly stallMs: number;
  readonly log: DeliveryLog;
}

export interface TelemetryResult {
  /** Publishes sent; each carries a sequence number from 0 to `sent - 1`. */
  readonly sent: number;
  /** Turns skipped because the device's connection was closed. */
  readonly skipped: number;
  /** QoS 1: `acked[seq]` is 1 once the broker acknowledged that publish. */
  readonly acked: Uint8Array;
  readonly acknowledged: number;
  readonly startedAt: number;
  /** When the last publish went out. */
  readonly sendingEndedAt: number;
  /** The last delivery or acknowledgement. */
  readonly endedAt: number;
  readonly timeLimited: boolean;
  readonly cutShort?: string;
}

const TICK_MS = 5;

export async function publishTelemetry(options: TelemetryOptions): Promise<TelemetryResult> {
  const { devices, qos, log, fanOut, stallMs } = options;
  const slotMs = options.intervalMs / Math.max(1, devices.length);
  const startedAt = performance.now();
  const deadline = startedAt + options.timeLimitMs;
  let acked = new Uint8Array(1024);
  let turns = 0;
  let sent = 0;
  let skipped = 0;
  let acknowledged = 0;
  let lastAcknowledgedAt = 0;
  let timeLimited = false;
  let cutShort: string | undefined;

  while (sent < options.count && devices.length > 0) {
    const now = performance.now();
    if (now > deadline) {
      timeLimited = true;
      break;
    }
    const due = Math.floor((now - startedAt) / slotMs) + 1;
    while (turns < due && sent < options.count) {
      const device = devices[turns % devices.length]!;
      const topic = options.topic(turns % devices.length);
      turns += 1;
      if (device.closed) {
        skipped += 1;
        continue;
      }
      const seq = sent++;
      if (seq >= acked.length) {
        const grown = new Uint8Array(acked.length * 2);
        grown.set(acked);
        acked = grown;
      }
      const done = device.publish(topic, stampedPayload(options.payloadBytes, seq), qos);
      if (qos === 1) {
        done.then(
          () => {
            acked[seq] = 1;
            acknowledged += 1;
            lastAcknowledgedAt = performance.now();
            log.progress.notify();
          },
          // A device the broker closed: its unacknowledged publish is not counted as acknowledged.
          () => log.progress.notify(),
        );
      }
    }
    await sleep(Math.max(1, Math.min(TICK_MS, startedAt + turns * slotMs - performance.now())));
  }
  const sendingEndedAt = performance.now();

  // Drain: wait for what is still on its way, as long as it keeps coming.
  const drainDeadline = performance.now() + options.timeLimitMs;
  const expected = sent * fanOut;
  const open = (): number => devices.filter((d) => !d.closed).length;
  while (log.unique < expected || (qos === 1 && acknowledged < sent && open() > 0)) {
    if (performance.now() > drainDeadline) {
      cutShort ??= `still draining ${options.timeLimitMs} ms after the last publish`;
      break;
    }
    if (!(await log.progress.wait(stallMs))) {
      cutShort ??= `stalled: nothing delivered or acknowledged for ${stallMs} ms`;
      break;
    }
  }
  const endedAt = Math.max(log.lastReceivedAt, lastAcknowledgedAt, sendingEndedAt);
  return { sent, skipped, acked: acked.subarray(0, sent), acknowledged, startedAt, sendingEndedAt, endedAt, timeLimited, ...(cutShort ? { cutShort } : {}) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
