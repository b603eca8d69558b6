import { Duration, Stack, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, MetricFilter, type ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { BrowserDoor } from './browser-door';
import type { DeviceListener } from './device-listener';
import { LISTENER_SCALING } from './listener-scaling';
import { brokerMetricAlarms, brokerMetricWidgets } from './broker-metrics';

export interface BrokerMonitoringProps {
  /** The broker's functions, each with the log group it writes to. */
  readonly functions: ReadonlyArray<IFunction & { readonly logGroup: ILogGroup }>;
  readonly tables: ReadonlyMap<string, Table>;
  readonly browserDoor: BrowserDoor;
  readonly deviceListener: DeviceListener;
  readonly alarmEmail?: string;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * The log message of an @connections call that failed after its retries
 * (shared/gateway/connections-api.ts CONNECTIONS_CALL_FAILED; infra/ imports no runtime code, a
 * test checks the two agree); its `connections` field counts the connections it carried.
 */
export const CONNECTIONS_CALL_FAILED_MESSAGE = '@connections call failed';

/**
 * Alarms on what needs a person (Lambda errors and throttles, DynamoDB throttles, API Gateway
 * errors, @connections deliveries that failed after their retries, unhealthy or missing listener
 * targets, the broker's own: deliveries dropped, DynamoDB unavailable, slow handlers), all sent to
 * one SNS topic, and a dashboard.
 */
export class BrokerMonitoring extends Construct {
  readonly alarmTopic: Topic;
  readonly dashboard: Dashboard;
  readonly alarms: Alarm[] = [];
  /** Connections whose bytes or close an @connections call failed to deliver after its retries (counted from the functions' logs). */
  readonly connectionsCallFailures: Metric;

  constructor(scope: Construct, id: string, props: BrokerMonitoringProps) {
    super(scope, id);
    this.alarmTopic = new Topic(this, 'Alarms', { displayName: 'MQTT broker alarms', enforceSSL: true });
    Validations.of(this.alarmTopic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry alarm names and states only; CloudWatch cannot publish to a topic under the AWS-managed SNS key, and a customer key costs $1/month idle',
    });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));

    for (const fn of props.functions) {
      const name = fn.node.id;
      this.alarm(`${name}Errors`, fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }), `${name}: the handler threw`);
      this.alarm(`${name}Throttles`, fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }), `${name}: invocations throttled`);
    }
    for (const [name, table] of props.tables) {
      const throttles = new MathExpression({
        expression: 'reads + writes',
        usingMetrics: {
          reads: table.metric('ReadThrottleEvents', { statistic: 'Sum' }),
          writes: table.metric('WriteThrottleEvents', { statistic: 'Sum' }),
        },
        period: FIVE_MINUTES,
        label: `${name} throttle events`,
      });
      this.alarm(`${name}TableThrottles`, throttles, `DynamoDB ${name}: requests throttled`);
    }
    this.connectionsCallFailures = this.countConnectionsCallFailures(props.functions);
    this.alarm('ConnectionsCallFailures', this.connectionsCallFailures, '@connections: deliveries failed after their retries (throttled past them, 5xx, or a listener task not answering)');
    const { stage } = props.browserDoor;
    const apiErrors = ['IntegrationError', 'ExecutionError'].map((metric) => stage.metric(metric, { statistic: 'Sum', period: FIVE_MINUTES }));
    apiErrors.forEach((metric, i) => this.alarm(`WebSocketApi${['Integration', 'Execution'][i]}Errors`, metric, 'API Gateway WebSocket: a route failed'));

    const { targetGroups } = props.deviceListener;
    for (const [name, group] of Object.entries(targetGroups)) {
      const label = ({ mqtt: 'Mqtt', mqttWebSocket: 'MqttWebSocket', mqttTls: 'MqttTls' } as const)[name as 'mqtt' | 'mqttWebSocket' | 'mqttTls'];
      this.alarm(`${label}UnhealthyTargets`, group.metrics.unHealthyHostCount({ statistic: 'Maximum', period: Duration.minutes(1) }), `listener ${name}: a task fails its health check`);
      this.alarm(
        `${label}NoHealthyTargets`,
        group.metrics.healthyHostCount({ statistic: 'Minimum', period: Duration.minutes(1) }),
        `listener ${name}: no healthy task, devices cannot connect`,
        { threshold: 1, comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD, evaluationPeriods: 3, treatMissingData: TreatMissingData.BREACHING },
      );
    }

    // ---- The broker's own metrics (EMF from the handlers): infra/constructs/broker-metrics.ts ----
    for (const { id, metric, description, options } of brokerMetricAlarms(this)) this.alarm(id, metric, description, options);

    this.dashboard = this.buildDashboard(props);
  }

  /** One metric filter per function's log group, all counting into one metric of this stack's namespace. */
  private countConnectionsCallFailures(functions: BrokerMonitoringProps['functions']): Metric {
    const metricNamespace = `MqttBroker/${Stack.of(this).stackName}`;
    const metricName = 'ConnectionsCallFailures';
    for (const fn of functions) {
      new MetricFilter(this, `${fn.node.id}ConnectionsCallFailures`, {
        logGroup: fn.logGroup,
        metricNamespace,
        metricName,
        filterPattern: FilterPattern.stringValue('$.message', '=', CONNECTIONS_CALL_FAILED_MESSAGE),
        metricValue: '$.connections',
      });
    }
    return new Metric({ namespace: metricNamespace, metricName, statistic: 'Sum', period: FIVE_MINUTES });
  }

  private alarm(
    id: string,
    metric: IMetric,
    description: string,
    options: { threshold?: number; comparisonOperator?: ComparisonOperator; evaluationPeriods?: number; treatMissingData?: TreatMissingData } = {},
  ): void {
    const alarm = new Alarm(this, id, {
      metric,
      alarmDescription: description,
      threshold: options.threshold ?? 1,
      comparisonOperator: options.comparisonOperator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      treatMissingData: options.treatMissingData ?? TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    alarm.addOkAction(new SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
  }

  private buildDashboard(props: BrokerMonitoringProps): Dashboard {
    const { loadBalancer, service, targetGroups, taskMetrics } = props.deviceListener;
    const { stage } = props.browserDoor;
    const dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const graph = (title: string, left: IMetric[], right: IMetric[] = []) => new GraphWidget({ title, left, right, width: 12 });
    dashboard.addWidgets(new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }));
    dashboard.addWidgets(
      graph(
        'Device connections (NLB)',
        [loadBalancer.metrics.activeFlowCount(), loadBalancer.metrics.newFlowCount()],
        Object.values(targetGroups).map((group) => group.metrics.healthyHostCount()),
      ),
      graph('Listener tasks: CPU and memory (%)', [service.metricCpuUtilization(), service.metricMemoryUtilization()]),
    );
    dashboard.addWidgets(
      graph(`Listener tasks: connections a task (scaling target ${LISTENER_SCALING.connectionsPerTask})`, [taskMetrics.connections]),
      graph(`Listener tasks: invocations in flight a task (scaling target ${LISTENER_SCALING.inFlightInvocationsPerTask})`, [taskMetrics.inFlight]),
    );
    dashboard.addWidgets(
      graph('Lambda invocations', props.functions.map((fn) => fn.metricInvocations({ label: fn.node.id }))),
      graph('Lambda errors and throttles', props.functions.flatMap((fn) => [fn.metricErrors({ label: `${fn.node.id} errors` }), fn.metricThrottles({ label: `${fn.node.id} throttles` })])),
    );
    dashboard.addWidgets(
      graph('Lambda duration p99 (ms)', props.functions.map((fn) => fn.metricDuration({ statistic: 'p99', label: fn.node.id }))),
      graph('Browser connections and messages (API Gateway)', [stage.metric('ConnectCount', { statistic: 'Sum' }), stage.metric('MessageCount', { statistic: 'Sum' })], [
        stage.metric('ClientError', { statistic: 'Sum' }),
        stage.metric('IntegrationError', { statistic: 'Sum' }),
        stage.metric('ExecutionError', { statistic: 'Sum' }),
        this.connectionsCallFailures.with({ label: '@connections failures after retries (both doors)' }),
      ]),
    );
    const tables = [...props.tables];
    dashboard.addWidgets(
      graph('DynamoDB consumed read / write units', tables.map(([name, t]) => t.metricConsumedReadCapacityUnits({ label: `${name} reads` })), tables.map(([name, t]) => t.metricConsumedWriteCapacityUnits({ label: `${name} writes` }))),
      graph('DynamoDB throttle events', tables.flatMap(([name, t]) => [t.metric('ReadThrottleEvents', { statistic: 'Sum', label: `${name} reads` }), t.metric('WriteThrottleEvents', { statistic: 'Sum', label: `${name} writes` })])),
    );
    // ---- The broker's own metrics (EMF from the handlers): infra/constructs/broker-metrics.ts ----
    for (const row of brokerMetricWidgets(this)) dashboard.addWidgets(...row);
    return dashboard;
  }

  /** The console address of the dashboard. */
  get dashboardUrl(): string {
    const region = Stack.of(this).region;
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${this.dashboard.dashboardName}`;
  }
}
