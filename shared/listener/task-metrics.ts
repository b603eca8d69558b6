/**
 * What binds a listener task, reported once a minute as CloudWatch metrics: its open device
 * sockets, and its packet-handler invocations in flight (averaged over the minute, weighted by
 * time). Written as Embedded Metric Format lines on stdout, which CloudWatch Logs turns into
 * metrics as the awslogs driver delivers them: no CloudWatch API call, no permission, no agent.
 */
import type { BatchResult, ListenerEvent, PacketSink } from './events';
import { LISTENER_METRICS } from './listener-metrics';

/** A sink that knows how many of its invocations are in flight, and their time-weighted mean. */
export class CountingSink implements PacketSink {
  private inFlight = 0;
  /** When `inFlight` last changed, and the start of the current period. */
  private changedAt: number;
  private periodStart: number;
  /** Invocations in flight times milliseconds, this period. */
  private weighted = 0;

  constructor(
    private readonly sink: PacketSink,
    private readonly now: () => number = Date.now,
  ) {
    this.changedAt = this.periodStart = now();
  }

  async invoke(event: ListenerEvent): Promise<BatchResult | void> {
    this.change(+1);
    try {
      return await this.sink.invoke(event);
    } finally {
      this.change(-1);
    }
  }

  /** The mean number in flight since the last call (or the start); a new period begins. */
  takeMeanInFlight(): number {
    this.change(0);
    const elapsed = this.changedAt - this.periodStart;
    const mean = elapsed > 0 ? this.weighted / elapsed : this.inFlight;
    this.weighted = 0;
    this.periodStart = this.changedAt;
    return mean;
  }

  private change(delta: number): void {
    const now = this.now();
    this.weighted += this.inFlight * (now - this.changedAt);
    this.changedAt = now;
    this.inFlight += delta;
  }
}

/** One EMF line: the task's figures as metrics of LISTENER_METRICS.namespace, dimensioned by `cluster`. */
export function emfLine(cluster: string, figures: { connections: number; inFlightInvocations: number }, timestamp: number): string {
  return JSON.stringify({
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: LISTENER_METRICS.namespace,
          Dimensions: [[LISTENER_METRICS.dimension]],
          Metrics: [
            { Name: LISTENER_METRICS.connections, Unit: 'Count' },
            { Name: LISTENER_METRICS.inFlightInvocations, Unit: 'Count' },
          ],
        },
      ],
    },
    [LISTENER_METRICS.dimension]: cluster,
    [LISTENER_METRICS.connections]: figures.connections,
    [LISTENER_METRICS.inFlightInvocations]: Math.round(figures.inFlightInvocations * 100) / 100,
  });
}

export interface TaskMetricsOptions {
  readonly cluster: string;
  readonly sink: CountingSink;
  readonly connections: () => number;
  readonly write?: (line: string) => void;
  readonly intervalMs?: number;
  readonly now?: () => number;
}

/** Reports every `intervalMs` (a minute) until stopped. */
export function reportTaskMetrics(options: TaskMetricsOptions): { stop(): void } {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const now = options.now ?? Date.now;
  const timer = setInterval(
    () => write(emfLine(options.cluster, { connections: options.connections(), inFlightInvocations: options.sink.takeMeanInFlight() }, now())),
    options.intervalMs ?? LISTENER_METRICS.periodSeconds * 1000,
  );
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
