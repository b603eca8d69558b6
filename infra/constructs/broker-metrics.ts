/**
 * The broker's own metrics: what the handlers count (shared/broker/stats.ts) and print as one
 * Embedded Metric Format line per flush (shared/util/emf.ts, whose metric names this reads, so
 * the two cannot drift), under one namespace with the stack's name as dimension. The alarms and
 * dashboard rows on them, for BrokerMonitoring. Kept apart from the other metrics of the stack.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { ComparisonOperator, GraphWidget, Metric, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { EMF_METRICS, HANDLER_LATENCY_METRIC } from '../../shared/util/emf';

export const BROKER_METRICS_NAMESPACE = 'MqttBroker';

/** What the broker functions need to print their EMF lines (functions/runtime.ts statsOptionsFromEnv). */
export function brokerMetricsEnvironment(scope: Construct): Record<string, string> {
  return { METRICS_NAMESPACE: BROKER_METRICS_NAMESPACE, METRICS_STACK: Stack.of(scope).stackName };
}

const FIVE_MINUTES = Duration.minutes(5);

function brokerMetric(scope: Construct, metricName: string, statistic: string, label: string): Metric {
  return new Metric({ namespace: BROKER_METRICS_NAMESPACE, metricName, dimensionsMap: { Stack: Stack.of(scope).stackName }, statistic, period: FIVE_MINUTES, label });
}

export interface BrokerMetricAlarm {
  readonly id: string;
  readonly metric: IMetric;
  readonly description: string;
  readonly options?: { threshold?: number; comparisonOperator?: ComparisonOperator; evaluationPeriods?: number };
}

/**
 * Where a person is wanted: a message not delivered to a subscriber (its queue full, or larger
 * than it accepts), a client's packets refused because DynamoDB throttled or could not be reached,
 * and handlers slow for a quarter of an hour. Expired deliveries are the publisher's choice: on
 * the dashboard only.
 */
export function brokerMetricAlarms(scope: Construct): BrokerMetricAlarm[] {
  return [
    {
      id: 'BrokerDeliveriesDropped',
      metric: brokerMetric(scope, EMF_METRICS.deliveriesDropped, 'Sum', 'deliveries dropped'),
      description: "broker: messages not delivered to a subscriber (its queue full, or larger than it accepts); the handlers' logs say which",
    },
    {
      id: 'BrokerStoreUnavailable',
      metric: brokerMetric(scope, EMF_METRICS.storeUnavailable, 'Sum', 'batches refused: DynamoDB unavailable'),
      description: "broker: clients' packets refused for now because DynamoDB throttled or could not be reached after retries",
    },
    {
      id: 'BrokerHandlerLatency',
      metric: brokerMetric(scope, HANDLER_LATENCY_METRIC, 'p99', 'handler latency p99'),
      description: 'broker: handler invocations slow (p99 over 1 s for 15 minutes)',
      options: { threshold: 1000, comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD, evaluationPeriods: 3 },
    },
  ];
}

/** Dashboard rows: messages and connections, deliveries not made, handler latency, rules. */
export function brokerMetricWidgets(scope: Construct): GraphWidget[][] {
  const sum = (counter: keyof typeof EMF_METRICS, label: string) => brokerMetric(scope, EMF_METRICS[counter], 'Sum', label);
  const graph = (title: string, left: IMetric[], right: IMetric[] = []) => new GraphWidget({ title, left, right, width: 12 });
  const latency = (statistic: string) => brokerMetric(scope, HANDLER_LATENCY_METRIC, statistic, `latency ${statistic}`);
  return [
    [
      graph('Broker: MQTT messages (PUBLISH) in and out', [sum('publishReceived', 'received'), sum('publishSent', 'sent')]),
      graph('Broker: connections accepted and ended', [sum('connects', 'connects'), sum('disconnects', 'disconnects')]),
    ],
    [
      graph('Broker: deliveries not made, batches refused', [sum('deliveriesDropped', 'dropped'), sum('deliveriesExpired', 'expired')], [
        sum('storeUnavailable', 'refused: DynamoDB unavailable'),
      ]),
      graph('Broker: handler latency (ms)', [latency('p50'), latency('p99'), latency('Maximum')]),
    ],
    [
      graph('Broker: rules (messages to targets)', [sum('ruleDeliveries', 'accepted by the target')], [
        sum('ruleDeadLetters', 'dead-lettered'),
        sum('ruleFailures', 'failed (not acknowledged, or QoS 0 lost)'),
      ]),
    ],
  ];
}
