/**
 * CloudWatch Embedded Metric Format: one JSON log line that CloudWatch Logs turns into metrics,
 * with no PutMetricData call. One line per flush of a process's counters (shared/broker/stats.ts),
 * never one per packet. Format:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
import type { Counter, StatsFlush, StatsSink } from '../broker/stats';

/** The metrics' names in CloudWatch, by counter. */
export const EMF_METRICS: Readonly<Record<Counter, string>> = {
  publishReceived: 'MessagesReceived',
  publishSent: 'MessagesSent',
  packetsReceived: 'PacketsReceived',
  packetsSent: 'PacketsSent',
  connects: 'Connects',
  disconnects: 'Disconnects',
  subscriptions: 'SubscriptionsAdded',
  retained: 'RetainedTopicsAdded',
  deliveriesDropped: 'DeliveriesDropped',
  deliveriesExpired: 'DeliveriesExpired',
  storeUnavailable: 'StoreUnavailable',
  ruleDeliveries: 'RuleDeliveries',
  ruleDeadLetters: 'RuleDeadLetters',
  ruleFailures: 'RuleFailures',
};

export const HANDLER_LATENCY_METRIC = 'HandlerLatency';

export interface EmfOptions {
  readonly namespace: string;
  /** One dimension set for every metric (the stack's name, so two stacks' metrics stay apart). */
  readonly dimensions: Readonly<Record<string, string>>;
  readonly now?: () => number;
}

/** The EMF line of one flush: every counter (zeros included, so a quiet interval reads 0) and the sampled latencies. */
export function emfLine(flush: StatsFlush, options: EmfOptions): string {
  const counters = Object.keys(EMF_METRICS) as Counter[];
  const values: Record<string, number | number[]> = {};
  for (const counter of counters) values[EMF_METRICS[counter]] = flush.counts[counter] ?? 0;
  const metrics: Array<{ Name: string; Unit: string }> = counters.map((counter) => ({ Name: EMF_METRICS[counter], Unit: 'Count' }));
  if (flush.latenciesMs.length > 0) {
    values[HANDLER_LATENCY_METRIC] = flush.latenciesMs.map((ms) => Math.round(ms * 1000) / 1000);
    metrics.push({ Name: HANDLER_LATENCY_METRIC, Unit: 'Milliseconds' });
  }
  return JSON.stringify({
    _aws: {
      Timestamp: (options.now ?? Date.now)(),
      CloudWatchMetrics: [{ Namespace: options.namespace, Dimensions: [Object.keys(options.dimensions)], Metrics: metrics }],
    },
    ...options.dimensions,
    ...values,
  });
}

/** A sink that prints each flush as an EMF line (Lambda sends stdout to CloudWatch Logs). */
export function emfSink(write: (line: string) => void, options: EmfOptions): StatsSink {
  return {
    add: (flush) => {
      write(emfLine(flush, options));
      return Promise.resolve();
    },
  };
}
