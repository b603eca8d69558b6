/** The listener service scales on what binds a task, and scales in slowly enough that a dip in load cuts no client off. */
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { LISTENER_METRICS } from '../../shared/listener/listener-metrics';
import { logicalId, synthBroker } from './stack-fixture';

const synthesized = synthBroker();
const { template, stack } = synthesized;
const cluster = { Ref: logicalId(synthesized, stack.deviceListener.service.cluster) };
const policies = () => Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy')).map((p) => p.Properties);

describe('listener autoscaling', () => {
  it('keeps the task count between the context bounds', () => {
    const scaled = synthBroker({ minListenerTasks: '2', maxListenerTasks: '6' }).template;
    scaled.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 2, MaxCapacity: 6, ScalableDimension: 'ecs:service:DesiredCount' });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 1, MaxCapacity: 4 });
  });

  it("each task reports its metrics under its cluster's name", () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Environment: Match.arrayWith([{ Name: LISTENER_METRICS.envVar, Value: cluster }]) })],
    });
  });

  it("scales out on the tasks' connections (20,000 a task) and invocations in flight (250 a task), averaged over the tasks", () => {
    for (const [metricName, target] of [
      [LISTENER_METRICS.connections, 20_000],
      [LISTENER_METRICS.inFlightInvocations, 250],
    ] as const) {
      template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
        PolicyType: 'TargetTrackingScaling',
        TargetTrackingScalingPolicyConfiguration: {
          CustomizedMetricSpecification: {
            Namespace: LISTENER_METRICS.namespace,
            MetricName: metricName,
            Dimensions: [{ Name: LISTENER_METRICS.dimension, Value: cluster }],
            Statistic: 'Average',
          },
          TargetValue: target,
          DisableScaleIn: true,
          ScaleOutCooldown: 60,
        },
      });
    }
  });

  it('keeps CPU and memory as a safety scale-out only', () => {
    for (const [metric, target] of [
      ['ECSServiceAverageCPUUtilization', 70],
      ['ECSServiceAverageMemoryUtilization', 80],
    ] as const) {
      template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
        PolicyType: 'TargetTrackingScaling',
        TargetTrackingScalingPolicyConfiguration: Match.objectLike({ PredefinedMetricSpecification: { PredefinedMetricType: metric }, TargetValue: target, DisableScaleIn: true }),
      });
    }
  });

  it('scales in by one policy only: one task, after 30 minutes with the busiest of the four below half its target, at most every 20 minutes', () => {
    const targetTracking = policies().filter((p) => p.PolicyType === 'TargetTrackingScaling');
    expect(targetTracking).toHaveLength(4);
    expect(targetTracking.every((p) => p.TargetTrackingScalingPolicyConfiguration.DisableScaleIn === true)).toBe(true);
    const steps = policies().filter((p) => p.PolicyType === 'StepScaling');
    expect(steps).toHaveLength(1);
    expect(steps[0]!.StepScalingPolicyConfiguration).toMatchObject({
      AdjustmentType: 'ChangeInCapacity',
      Cooldown: 1200,
      StepAdjustments: [{ MetricIntervalUpperBound: 0, ScalingAdjustment: -1 }],
    });
    const alarm = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { EvaluationPeriods: 30 } })).map((a) => a.Properties);
    expect(alarm).toHaveLength(1);
    expect(alarm[0]).toMatchObject({ ComparisonOperator: 'LessThanOrEqualToThreshold', Threshold: 50, DatapointsToAlarm: 30 });
    const expression = (alarm[0]!.Metrics as Array<{ Expression?: string }>).find((m) => m.Expression)!.Expression;
    expect(expression).toBe('100 * MAX([c / 20000, f / 250, cpu / 70, mem / 80])');
  });

  it("the dashboard shows the tasks' connections and invocations in flight", () => {
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties.DashboardBody);
    for (const name of [LISTENER_METRICS.connections, LISTENER_METRICS.inFlightInvocations]) expect(body).toContain(`\\"${LISTENER_METRICS.namespace}\\",\\"${name}\\"`);
  });
});
