import { describe, expect, it } from 'vitest';
import { statsOptionsFromEnv } from '../../functions/runtime';
import { EMF_METRICS, emfLine, emfSink, HANDLER_LATENCY_METRIC } from '../../shared/util/emf';

const options = { namespace: 'MqttBroker', dimensions: { Stack: 'broker-test' }, now: () => 1_700_000_000_000 };

describe('Embedded Metric Format lines', () => {
  it('one line per flush: the _aws envelope names every metric, each a root member, under the stack dimension', () => {
    const line = emfLine({ counts: { publishReceived: 7, deliveriesDropped: 2 }, latenciesMs: [3.25, 10], startedAt: 0 }, options);
    expect(line).not.toContain('\n');
    const parsed = JSON.parse(line) as Record<string, unknown> & { _aws: { Timestamp: number; CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> } };
    expect(parsed._aws.Timestamp).toBe(1_700_000_000_000);
    const [directive] = parsed._aws.CloudWatchMetrics;
    expect(directive).toMatchObject({ Namespace: 'MqttBroker', Dimensions: [['Stack']] });
    expect(parsed.Stack).toBe('broker-test');
    // Every metric the directive names is a member of the line (EMF rejects the line otherwise).
    for (const metric of directive!.Metrics) expect(parsed[metric.Name], metric.Name).toBeDefined();
    expect(directive!.Metrics).toContainEqual({ Name: HANDLER_LATENCY_METRIC, Unit: 'Milliseconds' });
    expect(directive!.Metrics).toContainEqual({ Name: 'MessagesReceived', Unit: 'Count' });
    expect(parsed.MessagesReceived).toBe(7);
    expect(parsed.DeliveriesDropped).toBe(2);
    // A quiet counter reads 0, not missing.
    expect(parsed.MessagesSent).toBe(0);
    expect(parsed[HANDLER_LATENCY_METRIC]).toEqual([3.25, 10]);
    expect(directive!.Metrics).toHaveLength(Object.keys(EMF_METRICS).length + 1);
  });

  it('no latency metric when no handler ran', () => {
    const parsed = JSON.parse(emfLine({ counts: {}, latenciesMs: [], startedAt: 0 }, options)) as Record<string, unknown>;
    expect(parsed[HANDLER_LATENCY_METRIC]).toBeUndefined();
    expect(JSON.stringify(parsed)).not.toContain(HANDLER_LATENCY_METRIC);
  });

  it('the sink writes one line per flush', async () => {
    const lines: string[] = [];
    const sink = emfSink((line) => lines.push(line), options);
    await sink.add({ counts: { connects: 1 }, latenciesMs: [], startedAt: 0 });
    await sink.add({ counts: { connects: 2 }, latenciesMs: [], startedAt: 0 });
    expect(lines.map((line) => (JSON.parse(line) as { Connects: number }).Connects)).toEqual([1, 2]);
  });

  it('the functions print them when the stack names a namespace (METRICS_NAMESPACE, METRICS_STACK), and flush as often as MQTT_STATS_FLUSH_SECONDS says', () => {
    const options = statsOptionsFromEnv({ METRICS_NAMESPACE: 'MqttBroker', METRICS_STACK: 'prod', MQTT_STATS_FLUSH_SECONDS: '30' });
    expect(options).toMatchObject({ flushIntervalMs: 30_000, emf: { namespace: 'MqttBroker', dimensions: { Stack: 'prod' } } });
    expect(statsOptionsFromEnv({})).toEqual({ flushIntervalMs: 10_000 });
    expect(() => statsOptionsFromEnv({ MQTT_STATS_FLUSH_SECONDS: '0' })).toThrow(/MQTT_STATS_FLUSH_SECONDS/);
  });
});
