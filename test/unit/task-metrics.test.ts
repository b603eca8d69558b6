/** The listener task's report of what binds it: EMF lines CloudWatch turns into the metrics autoscaling reads. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BatchResult } from '../../shared/listener/events';
import { LISTENER_METRICS } from '../../shared/listener/listener-metrics';
import { CountingSink, emfLine, reportTaskMetrics } from '../../shared/listener/task-metrics';

const heartbeat = { type: 'heartbeat', endpoint: 'http://10.0.0.1:8090' } as const;

describe('CountingSink', () => {
  it('reports the invocations in flight as their mean over the period, weighted by time', async () => {
    let now = 0;
    const answers: Array<(result: BatchResult | void) => void> = [];
    const sink = new CountingSink({ invoke: () => new Promise((resolve) => answers.push(resolve)) }, () => now);
    const first = sink.invoke(heartbeat);
    now = 10_000;
    const second = sink.invoke(heartbeat); // two in flight from 10 s
    now = 40_000;
    answers[0]!();
    await first; // one from 40 s
    now = 60_000;
    // 1 for 10 s, 2 for 30 s, 1 for 20 s: 90 / 60
    expect(sink.takeMeanInFlight()).toBe(1.5);
    now = 120_000;
    expect(sink.takeMeanInFlight()).toBe(1);
    answers[1]!();
    await second;
    now = 180_000;
    expect(sink.takeMeanInFlight()).toBe(0);
  });

  it('counts a failed invocation out as well', async () => {
    const sink = new CountingSink({ invoke: () => Promise.reject(new Error('throttled')) }, () => 0);
    await expect(sink.invoke(heartbeat)).rejects.toThrow('throttled');
    expect(sink.takeMeanInFlight()).toBe(0);
  });
});

describe('the EMF line', () => {
  it('names its metrics in the namespace and dimension the stack scales on', () => {
    const line = JSON.parse(emfLine('broker-cluster', { connections: 18_250, inFlightInvocations: 3.14159 }, 1_700_000_000_000)) as Record<string, unknown>;
    expect(line).toEqual({
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          {
            Namespace: 'MqttBroker/Listener',
            Dimensions: [['Cluster']],
            Metrics: [
              { Name: 'Connections', Unit: 'Count' },
              { Name: 'InFlightInvocations', Unit: 'Count' },
            ],
          },
        ],
      },
      Cluster: 'broker-cluster',
      Connections: 18_250,
      InFlightInvocations: 3.14,
    });
  });

  afterEach(() => vi.useRealTimers());

  it('is written once a period, one line each, until stopped', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const sink = new CountingSink({ invoke: () => Promise.resolve() });
    const report = reportTaskMetrics({ cluster: 'c', sink, connections: () => 7, write: (line) => lines.push(line) });
    vi.advanceTimersByTime(LISTENER_METRICS.periodSeconds * 1000 * 2);
    report.stop();
    vi.advanceTimersByTime(LISTENER_METRICS.periodSeconds * 1000 * 2);
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ Cluster: 'c', Connections: 7, InFlightInvocations: 0 });
  });
});
