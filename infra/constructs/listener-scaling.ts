import { Duration } from 'aws-cdk-lib';
import { AdjustmentType } from 'aws-cdk-lib/aws-applicationautoscaling';
import { MathExpression, Metric, Stats, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import type { FargateService, ICluster } from 'aws-cdk-lib/aws-ecs';
import { LISTENER_METRICS } from '../../shared/listener/listener-metrics';

/**
 * Targets per listener task (0.25 vCPU, 0.5 GB). Connections: a task admits 50,000 and holds
 * about 5 KB of heap each idle (docs/benchmark.md); 20,000 leaves room for the clients a draining
 * or failed task sends over. Invocations in flight: the task's Lambda client has 1,000 sockets
 * (shared/listener/lambda-sink.ts); a quarter of them busy on average means handlers are slow or
 * the task's share of the load is high, long before the pool binds. CPU and memory: safety only.
 */
export const LISTENER_SCALING = {
  connectionsPerTask: 20_000,
  inFlightInvocationsPerTask: 250,
  cpuPercent: 70,
  memoryPercent: 80,
  /** Scale-in only when the busiest of the four is below this share of its target... */
  scaleInBelowPercent: 50,
  /** ...for this long, one task at a time... */
  scaleInAfter: Duration.minutes(30),
  /** ...and no second scale-in sooner than this. */
  scaleInCooldown: Duration.minutes(20),
  scaleOutCooldown: Duration.minutes(1),
} as const;

/**
 * The listener service scales out on what binds a task: its connections and its invocations in
 * flight (the task's own metrics, shared/listener/task-metrics.ts, averaged over the tasks that
 * report: the service's total per task), and on CPU and memory as a safety net; target tracking,
 * none of which scales in. Scale-in, which drains a task's clients onto the others, is one step
 * policy on the busiest of the four measured against its target: below half of it for 30
 * minutes, one task less, at most one every 20 minutes. A dip in load cuts no one off.
 */
export function scaleListener(service: FargateService, cluster: ICluster, bounds: { readonly min: number; readonly max: number }): ListenerTaskMetrics {
  const scaling = service.autoScaleTaskCount({ minCapacity: bounds.min, maxCapacity: bounds.max });
  const perTask = (metricName: string): Metric =>
    new Metric({
      namespace: LISTENER_METRICS.namespace,
      metricName,
      dimensionsMap: { [LISTENER_METRICS.dimension]: cluster.clusterName },
      statistic: Stats.AVERAGE,
      period: Duration.seconds(LISTENER_METRICS.periodSeconds),
    });
  const connections = perTask(LISTENER_METRICS.connections);
  const inFlight = perTask(LISTENER_METRICS.inFlightInvocations);
  const outOnly = { disableScaleIn: true, scaleOutCooldown: LISTENER_SCALING.scaleOutCooldown };
  scaling.scaleToTrackCustomMetric('Connections', { metric: connections, targetValue: LISTENER_SCALING.connectionsPerTask, ...outOnly });
  scaling.scaleToTrackCustomMetric('InFlightInvocations', { metric: inFlight, targetValue: LISTENER_SCALING.inFlightInvocationsPerTask, ...outOnly });
  scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: LISTENER_SCALING.cpuPercent, ...outOnly });
  scaling.scaleOnMemoryUtilization('Memory', { targetUtilizationPercent: LISTENER_SCALING.memoryPercent, ...outOnly });

  const minute = Duration.minutes(1);
  const ratio = (metric: IMetric, target: number): [IMetric, number] => [metric, target];
  const parts = {
    c: ratio(connections, LISTENER_SCALING.connectionsPerTask),
    f: ratio(inFlight, LISTENER_SCALING.inFlightInvocationsPerTask),
    cpu: ratio(service.metricCpuUtilization({ period: minute }), LISTENER_SCALING.cpuPercent),
    mem: ratio(service.metricMemoryUtilization({ period: minute }), LISTENER_SCALING.memoryPercent),
  };
  const load = new MathExpression({
    expression: `100 * MAX([${Object.entries(parts).map(([id, [, target]]) => `${id} / ${target}`).join(', ')}])`,
    usingMetrics: Object.fromEntries(Object.entries(parts).map(([id, [metric]]) => [id, metric])),
    period: minute,
    label: 'Listener load: the busiest of connections, invocations in flight, CPU and memory, as % of its target',
  });
  const minutes = LISTENER_SCALING.scaleInAfter.toMinutes();
  scaling.scaleOnMetric('ScaleIn', {
    metric: load,
    scalingSteps: [
      { upper: LISTENER_SCALING.scaleInBelowPercent, change: -1 },
      { lower: LISTENER_SCALING.scaleInBelowPercent, change: 0 },
    ],
    adjustmentType: AdjustmentType.CHANGE_IN_CAPACITY,
    cooldown: LISTENER_SCALING.scaleInCooldown,
    evaluationPeriods: minutes,
    datapointsToAlarm: minutes,
  });
  return { connections, inFlight };
}

/** The tasks' own metrics, averaged over the tasks that report (for the dashboard). */
export interface ListenerTaskMetrics {
  readonly connections: IMetric;
  readonly inFlight: IMetric;
}
