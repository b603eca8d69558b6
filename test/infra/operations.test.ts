/** What running the stack relies on: the functions' build and settings, the browsers' door, logs, alarms, outputs. */
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { CONNECTIONS_CALL_FAILED_MESSAGE } from '../../infra/constructs/broker-monitoring';
import { CONNECTIONS_CALL_FAILED } from '../../shared/gateway/connections-api';
import { brokerTables } from '../../shared/store/tables';
import { logicalId, synthBroker } from './stack-fixture';

const synthesized = synthBroker();
const { template, stack } = synthesized;
const id = (construct: { node: { defaultChild?: unknown } }) => logicalId(synthesized, construct);
const functionProps = (fn: { node: { defaultChild?: unknown } }) => template.findResources('AWS::Lambda::Function')[id(fn)]!.Properties;

describe('functions', () => {
  it('run Node 24 on arm64 with source maps, one per entry point', () => {
    template.resourceCountIs('AWS::Lambda::Function', 7);
    for (const fn of [...Object.values(stack.handlers), stack.fanout, stack.sweeper, stack.httpPublish]) {
      expect(functionProps(fn)).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Environment: { Variables: expect.objectContaining({ NODE_OPTIONS: '--enable-source-maps', LOG_LEVEL: 'info' }) },
      });
    }
  });

  it('that hold broker state learn every table name and the @connections endpoint from their environment', () => {
    const tableEnv = Object.fromEntries(brokerTables.map((def) => [def.envVar, { Ref: id(stack.tables.table(def.id)) }]));
    for (const fn of [stack.handlers.packets, stack.handlers.wsDefault, stack.handlers.wsDisconnect]) {
      expect(functionProps(fn).Environment.Variables).toMatchObject({
        ...tableEnv,
        APIGW_MANAGEMENT_ENDPOINT: stack.resolve(stack.browserDoor.managementEndpoint),
      });
    }
    expect(Object.keys(functionProps(stack.handlers.wsConnect).Environment.Variables).sort()).toEqual(['LOG_LEVEL', 'NODE_OPTIONS', 'SECURITY_TABLE']);
  });

  it('the sweeper runs every minute, and a failed or timed-out run is never retried to overlap the next', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [id(stack.sweeper), 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } })],
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: id(stack.sweeper) },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
    expect(functionProps(stack.sweeper).Timeout).toBe(60);
  });
});

describe("browsers' door", () => {
  it('routes $connect, $default and $disconnect to their handlers', () => {
    const integrations = template.findResources('AWS::ApiGatewayV2::Integration');
    // The WebSocket API's routes (the HTTP API's: http-door.test.ts)
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route'))
      .map((r) => r.Properties)
      .filter((r) => JSON.stringify(r.ApiId) === JSON.stringify({ Ref: id(stack.browserDoor.api) }));
    const handlerOf = (routeKey: string) => {
      const route = routes.find((r) => r.RouteKey === routeKey)!;
      const integration = integrations[(route.Target['Fn::Join'][1][1] as { Ref: string }).Ref]!.Properties;
      return JSON.stringify(integration.IntegrationUri);
    };
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['$connect', '$default', '$disconnect']);
    expect(handlerOf('$connect')).toContain(id(stack.handlers.wsConnect));
    expect(handlerOf('$default')).toContain(id(stack.handlers.wsDefault));
    expect(handlerOf('$disconnect')).toContain(id(stack.handlers.wsDisconnect));
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'WEBSOCKET' });
  });

  it('deploys one stage automatically, with access logs, after the account logging role exists', () => {
    const stages = template.findResources('AWS::ApiGatewayV2::Stage', { Properties: { ApiId: { Ref: id(stack.browserDoor.api) } } });
    const [stage] = Object.values(stages);
    expect(Object.keys(stages)).toHaveLength(1);
    expect(stage!.Properties).toMatchObject({
      StageName: 'mqtt',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] }, Format: expect.stringContaining('$context.connectionId') },
    });
    const account = Object.keys(template.findResources('AWS::ApiGateway::Account'))[0]!;
    expect(stage!.DependsOn).toContain(account);
  });

  it('keeps the account-wide API Gateway logging role when the stack is deleted', () => {
    const account = Object.values(template.findResources('AWS::ApiGateway::Account'))[0]!;
    const role = template.findResources('AWS::IAM::Role')[account.Properties.CloudWatchRoleArn['Fn::GetAtt'][0]]!;
    expect(role.DeletionPolicy).toBe('Retain');
  });
});

describe('logs', () => {
  it('every log group keeps 30 days by default, and the context changes it', () => {
    const groups = Object.values(template.findResources('AWS::Logs::LogGroup'));
    // Seven functions, the listener, the two APIs' access logs, rejected VPC flows.
    expect(groups).toHaveLength(11);
    for (const group of groups) expect(group.Properties.RetentionInDays).toBe(30);
    const week = Object.values(synthBroker({ logRetentionDays: '7' }).template.findResources('AWS::Logs::LogGroup'));
    for (const group of week) expect(group.Properties.RetentionInDays).toBe(7);
  });

  it('each function and the listener write to their own group', () => {
    for (const fn of Object.values(stack.handlers)) {
      expect(functionProps(fn).LoggingConfig).toEqual({ LogGroup: { Ref: expect.any(String) } });
    }
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ LogConfiguration: Match.objectLike({ Options: Match.objectLike({ 'awslogs-group': { Ref: id(stack.deviceListener.logGroup) } }) }) })],
    });
  });
});

describe('alarms', () => {
  // Not the listener's scale-in alarm, whose action is its scaling policy (listener-scaling.test.ts).
  const scalingPolicies = Object.keys(template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy'));
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'))
    .map((a) => a.Properties)
    .filter((a) => !JSON.stringify(a.AlarmActions).match(new RegExp(scalingPolicies.join('|'))));
  const topic = { Ref: id(stack.monitoring.alarmTopic) };
  const metricAlarms = (namespace: string, metricName: string) => alarms.filter((a) => a.Namespace === namespace && a.MetricName === metricName);

  it('on every function: errors and throttles', () => {
    for (const metric of ['Errors', 'Throttles']) {
      const dimensions = metricAlarms('AWS/Lambda', metric).map((a) => JSON.stringify(a.Dimensions));
      for (const fn of Object.values(stack.handlers)) {
        expect(dimensions).toContain(JSON.stringify([{ Name: 'FunctionName', Value: { Ref: id(fn) } }]));
      }
    }
  });

  it('on every table: read and write throttle events', () => {
    const throttleAlarms = alarms.filter((a) => a.Metrics?.some((m: { Expression?: string }) => m.Expression === 'reads + writes'));
    expect(throttleAlarms).toHaveLength(brokerTables.length);
    for (const alarm of throttleAlarms) {
      const names = alarm.Metrics.filter((m: { MetricStat?: unknown }) => m.MetricStat).map((m: { MetricStat: { Metric: { MetricName: string } } }) => m.MetricStat.Metric.MetricName);
      expect(names.sort()).toEqual(['ReadThrottleEvents', 'WriteThrottleEvents']);
    }
  });

  it('on API Gateway integration and execution errors', () => {
    for (const metric of ['IntegrationError', 'ExecutionError']) {
      expect(metricAlarms('AWS/ApiGateway', metric)[0]!.Dimensions).toEqual([
        { Name: 'ApiId', Value: { Ref: id(stack.browserDoor.api) } },
        { Name: 'Stage', Value: expect.anything() },
      ]);
    }
  });

  it('on @connections calls that failed after their retries, counted from every function\'s log lines', () => {
    expect(CONNECTIONS_CALL_FAILED_MESSAGE).toBe(CONNECTIONS_CALL_FAILED);
    const namespace = `MqttBroker/${stack.stackName}`;
    const filters = Object.values(template.findResources('AWS::Logs::MetricFilter')).map((f) => f.Properties);
    expect(filters).toHaveLength(stack.functions.all.length);
    for (const fn of stack.functions.all) {
      expect(filters).toContainEqual({
        LogGroupName: { Ref: id(fn.logGroup as unknown as { node: { defaultChild?: unknown } }) },
        FilterPattern: `{ $.message = "${CONNECTIONS_CALL_FAILED}" }`,
        MetricTransformations: [{ MetricNamespace: namespace, MetricName: 'ConnectionsCallFailures', MetricValue: '$.connections' }],
      });
    }
    expect(metricAlarms(namespace, 'ConnectionsCallFailures')).toEqual([
      expect.objectContaining({ Statistic: 'Sum', Period: 300, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' }),
    ]);
  });

  it('on unhealthy listener targets, and on no healthy target at all', () => {
    expect(metricAlarms('AWS/NetworkELB', 'UnHealthyHostCount')).toHaveLength(2);
    const none = metricAlarms('AWS/NetworkELB', 'HealthyHostCount');
    expect(none).toHaveLength(2);
    for (const alarm of none) expect(alarm).toMatchObject({ ComparisonOperator: 'LessThanThreshold', Threshold: 1, TreatMissingData: 'breaching' });
  });

  it('all notify the alarm topic, which enforces TLS and takes an email subscription from the context', () => {
    for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([topic]);
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    synthBroker({ alarmEmail: 'ops@example.com' }).template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('and a dashboard shows the broker', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

describe('outputs', () => {
  it('name every endpoint and table', () => {
    const outputs = Object.keys(template.findOutputs('*'));
    expect(outputs).toEqual(
      expect.arrayContaining([
        'MqttTlsEndpoint',
        'MqttWebSocketTlsEndpoint',
        'LoadBalancerDnsName',
        'BrowserWebSocketUrl',
        'ConnectionsManagementEndpoint',
        'PacketHandlerFunction',
        'AlarmTopicArn',
        'DashboardUrl',
        ...brokerTables.map((def) => `${def.id}TableName`),
      ]),
    );
    expect(outputs).not.toContain('MqttPlainEndpoint');
    synthBroker({ plainMqtt: 'true' }).template.hasOutput('MqttPlainEndpoint', {});
  });
});
