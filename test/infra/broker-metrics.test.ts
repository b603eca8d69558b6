/** The broker's own metrics (EMF from the handlers): the functions are told where to print them, and the stack alarms and graphs them. */
import { describe, expect, it } from 'vitest';
import { BROKER_METRICS_NAMESPACE } from '../../infra/constructs/broker-metrics';
import { EMF_METRICS, HANDLER_LATENCY_METRIC } from '../../shared/util/emf';
import { logicalId, synthBroker } from './stack-fixture';

const synthesized = synthBroker();
const { template, stack } = synthesized;
const id = (construct: { node: { defaultChild?: unknown } }) => logicalId(synthesized, construct);
const variables = (fn: { node: { defaultChild?: unknown } }) => template.findResources('AWS::Lambda::Function')[id(fn)]!.Properties.Environment.Variables as Record<string, unknown>;

describe("the broker's own metrics", () => {
  it('every function that handles packets or sweeps prints them under the namespace, with the stack as dimension; $connect (no broker state) does not', () => {
    for (const fn of [stack.handlers.packets, stack.handlers.wsDefault, stack.handlers.wsDisconnect, stack.fanout, stack.sweeper]) {
      expect(variables(fn)).toMatchObject({ METRICS_NAMESPACE: BROKER_METRICS_NAMESPACE, METRICS_STACK: stack.stackName });
    }
    expect(variables(stack.handlers.wsConnect).METRICS_NAMESPACE).toBeUndefined();
  });

  it('alarm on deliveries dropped, DynamoDB unavailable and slow handlers, each to the alarm topic', () => {
    type Stat = { Metric: { Namespace: string; MetricName: string; Dimensions: unknown }; Stat: string; Period: number };
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'))
      .map((a) => a.Properties as Record<string, unknown> & { Metrics?: Array<{ MetricStat?: Stat }> })
      .filter((a) => a.Metrics?.[0]?.MetricStat?.Metric.Namespace === BROKER_METRICS_NAMESPACE);
    const byMetric = Object.fromEntries(alarms.map((a) => [a.Metrics![0]!.MetricStat!.Metric.MetricName, a]));
    expect(Object.keys(byMetric).sort()).toEqual([EMF_METRICS.deliveriesDropped, EMF_METRICS.storeUnavailable, HANDLER_LATENCY_METRIC].sort());
    for (const alarm of alarms) {
      expect(alarm.Metrics).toHaveLength(1);
      expect(alarm.Metrics![0]!.MetricStat!.Metric.Dimensions).toEqual([{ Name: 'Stack', Value: stack.stackName }]);
      expect(alarm.AlarmActions).toEqual([{ Ref: id(stack.monitoring.alarmTopic) }]);
    }
    const stat = (name: string) => byMetric[name]!.Metrics![0]!.MetricStat!;
    expect(stat(EMF_METRICS.deliveriesDropped)).toMatchObject({ Stat: 'Sum', Period: 300 });
    expect(byMetric[EMF_METRICS.deliveriesDropped]).toMatchObject({ Threshold: 1, EvaluationPeriods: 1 });
    expect(stat(HANDLER_LATENCY_METRIC)).toMatchObject({ Stat: 'p99', Period: 300 });
    expect(byMetric[HANDLER_LATENCY_METRIC]).toMatchObject({ Threshold: 1000, EvaluationPeriods: 3, ComparisonOperator: 'GreaterThanThreshold' });
  });

  it('the dashboard graphs messages in and out, connections, deliveries dropped and expired, refusals and handler latency', () => {
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard!.Properties.DashboardBody);
    for (const name of [...Object.values(EMF_METRICS).filter((n) => !n.endsWith('Added') && !n.startsWith('Packets')), HANDLER_LATENCY_METRIC]) {
      expect(body, name).toContain(`\\"${BROKER_METRICS_NAMESPACE}\\",\\"${name}\\"`);
    }
    expect(body).toContain('Broker: handler latency (ms)');
  });
});
