import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';
import { BrokerFunctions } from './constructs/broker-functions';
import { BrokerMonitoring } from './constructs/broker-monitoring';
import { BrokerNetwork } from './constructs/broker-network';
import { BrokerTables, type SecurityUse } from './constructs/broker-tables';
import { BrowserDoor } from './constructs/browser-door';
import { DeviceListener, publicPorts } from './constructs/device-listener';
import { HttpDoor } from './constructs/http-door';
import { securityTable as securityTableDefinition } from '../shared/store/tables';
import { readBrokerSettings } from './broker-settings';
import { readDeployContext } from './deploy-context';
import { readRulesContext } from './rules-context';

/**
 * The whole broker in one stack: DynamoDB tables, the Lambda handlers, the browsers' door
 * (API Gateway WebSocket) and the devices' door (NLB + Fargate listener), alarms and a dashboard.
 * Settings come from CDK context (infra/deploy-context.ts; docs/deploy.md).
 */
export class BrokerStack extends Stack {
  readonly tables: BrokerTables;
  readonly network: BrokerNetwork;
  readonly functions: BrokerFunctions;
  /** The entry points of functions/, by role. */
  readonly handlers: Readonly<Record<'packets' | 'wsConnect' | 'wsDefault' | 'wsDisconnect', NodejsFunction>>;
  /** The fan-out worker: parts of a large fan-out, invoked by the functions that route messages. */
  readonly fanout: NodejsFunction;
  /** Scheduled every minute: stale connections, expired sessions, due wills. */
  readonly sweeper: NodejsFunction;
  readonly browserDoor: BrowserDoor;
  /** HTTP publish's function, behind the HTTP API. */
  readonly httpPublish: NodejsFunction;
  readonly httpDoor: HttpDoor;
  readonly deviceListener: DeviceListener;
  /** Signs the functions' requests to the listener tasks' delivery endpoint. */
  readonly deliverySecret: Secret;
  readonly monitoring: BrokerMonitoring;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const settings = readDeployContext(this.node);
    const brokerEnvironment = readBrokerSettings(this.node);
    const rules = readRulesContext(this.node);
    const { removalPolicy, logRetention, logLevel } = settings;

    this.tables = new BrokerTables(this, 'Tables', { removalPolicy });
    const network = (this.network = new BrokerNetwork(this, 'Network', { natGateways: settings.natGateways, logRetention, removalPolicy }));
    this.browserDoor = new BrowserDoor(this, 'BrowserDoor', { logRetention, removalPolicy });
    // Only the functions that deliver and the listener tasks can read it (grants below and in the constructs).
    this.deliverySecret = new Secret(this, 'DeliverySecret', {
      description: "Signs the broker functions' requests to the device listener's delivery endpoint",
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      // Holds no data: a new stack makes a new one.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.deliverySecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'Rotation would need a rotation function and a listener restart; the secret never leaves the stack: the functions and the tasks read it, and the delivery port admits only the functions',
    });
    this.functions = new BrokerFunctions(this, 'Functions', {
      network,
      tables: this.tables,
      connections: this.browserDoor,
      deliverySecret: this.deliverySecret,
      logRetention,
      removalPolicy,
      logLevel,
      brokerEnvironment: brokerEnvironment.functions,
      ...(rules ? { rules } : {}),
    });

    // Each function's tables, from what its code path touches (functions/*.ts through
    // functions/runtime.ts): a CONNECT reads users (password hashes: read only; only the users
    // CLI writes them) and counts connection rates, a PUBLISH counts publish rates; only the
    // API Gateway door's CONNECT takes the identity `$connect` remembered; `$default`,
    // `$disconnect` and the sweeper use the door's inbox, and a device's CONNECT that takes over
    // a browser's connection marks that connection's inbox (shared/broker/takeover.ts).
    const handlesPackets: SecurityUse[] = ['read users', 'count rates'];
    this.handlers = {
      packets: this.functions.add('PacketHandler', {
        entry: 'functions/packets.ts',
        description: "MQTT packets from the device listener: one connection's batch, in order, or its close",
        inbox: true,
        routes: true,
        security: handlesPackets,
      }),
      // Agrees the MQTT subprotocol and checks a `?token=`: no broker state, so no VPC; the
      // Security table's door identities only (below).
      wsConnect: this.functions.add('WsConnect', { entry: 'functions/ws-connect.ts', description: 'WebSocket $connect', broker: false, memorySize: 256 }),
      // API Gateway stops waiting for a route's integration after 29 s.
      wsDefault: this.functions.add('WsDefault', {
        entry: 'functions/ws-default.ts',
        description: 'WebSocket $default: MQTT packets from browsers',
        timeout: Duration.seconds(29),
        inbox: true,
        routes: true,
        security: [...handlesPackets, 'take door identities'],
      }),
      // Handles what waits in the inbox (a CONNECT among it) before ending the connection.
      wsDisconnect: this.functions.add('WsDisconnect', {
        entry: 'functions/ws-disconnect.ts',
        description: 'WebSocket $disconnect',
        inbox: true,
        routes: true,
        security: [...handlesPackets, 'take door identities'],
      }),
    };
    // Delivers and ends gone connections: broker state only.
    this.fanout = this.functions.add('Fanout', {
      entry: 'functions/fanout.ts',
      description: 'One part of a large fan-out, split off by the handler that routes the message',
    });
    // HTTP publish authenticates as a CONNECT does (users, failed checks counted per address) and
    // routes as a PUBLISH does: the broker's state, no inbox. API Gateway waits 30 s at most.
    this.httpPublish = this.functions.add('HttpPublish', {
      entry: 'functions/http-publish.ts',
      description: 'HTTP publish: POST /topics/{topic} from the HTTP API',
      timeout: Duration.seconds(29),
      security: handlesPackets,
    });
    this.httpDoor = new HttpDoor(this, 'HttpDoor', { publish: this.httpPublish, logRetention, removalPolicy });
    // Every function that routes messages may split a large fan-out: it learns the worker's name
    // and may invoke exactly that function, synchronously, so its acknowledgement waits for all parts.
    for (const router of [this.handlers.packets, this.handlers.wsDefault, this.handlers.wsDisconnect, this.httpPublish]) {
      router.addEnvironment('FANOUT_FUNCTION', this.fanout.functionName);
      router.addToRolePolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.fanout.functionArn] }));
    }
    // $connect checks a browser's `?token=` and remembers the identity for its CONNECT: it may
    // put door identities in the Security table, and nothing else (no user, no other state).
    const securityTable = this.tables.table(securityTableDefinition.id);
    this.handlers.wsConnect.addEnvironment(securityTableDefinition.envVar, securityTable.tableName);
    for (const [name, value] of Object.entries(brokerEnvironment.connect)) this.handlers.wsConnect.addEnvironment(name, value);
    this.tables.grantSecurity(this.handlers.wsConnect, ['remember door identities']);
    this.browserDoor.route('$connect', this.handlers.wsConnect);
    this.browserDoor.route('$default', this.handlers.wsDefault);
    this.browserDoor.route('$disconnect', this.handlers.wsDisconnect);

    // Ends connections whose $disconnect never came (and forgets their inbox), expires sessions
    // and publishes delayed wills.
    this.sweeper = this.functions.add('Sweeper', {
      entry: 'functions/sweeper.ts',
      description: 'Sweeps stale connections, sessions and delayed wills',
      timeout: Duration.minutes(1),
      inbox: true,
      routes: true,
    });
    // A run that fails or times out is not retried: the next minute's run does its work (a retry
    // would only overlap it; the sweeper's lease keeps even a manual run from doing so).
    this.sweeper.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
    new Rule(this, 'SweepEveryMinute', {
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.sweeper, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
    });
    // The sweeper publishes wills, so it may split a large fan-out too.
    this.sweeper.addEnvironment('FANOUT_FUNCTION', this.fanout.functionName);
    this.sweeper.addToRolePolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.fanout.functionArn] }));

    // Without a domain or a certificate ARN, the stack makes its own certificate (and CA).
    const certificateIssuer =
      settings.certificate.kind === 'stack'
        ? this.functions.add('StackCertificateIssuer', {
            entry: 'functions/stack-certificate.ts',
            description: "Makes the stack's CA and the load balancer's TLS certificate, imports it into ACM and renews it",
            broker: false,
            // RSA key generation, and up to four minutes of retrying a delete ACM says is in use.
            timeout: Duration.minutes(5),
            memorySize: 256,
          })
        : undefined;
    this.deviceListener = new DeviceListener(this, 'DeviceListener', {
      network,
      packetHandler: this.handlers.packets,
      deliverySecret: this.deliverySecret,
      certificate: settings.certificate,
      ...(certificateIssuer ? { certificateIssuer } : {}),
      plainMqtt: settings.plainMqtt,
      minTasks: settings.minListenerTasks,
      maxTasks: settings.maxListenerTasks,
      logRetention,
      removalPolicy,
      logLevel,
      environment: brokerEnvironment.listener,
      ...(settings.mutualTls ? { mutualTls: settings.mutualTls } : {}),
    });

    this.monitoring = new BrokerMonitoring(this, 'Monitoring', {
      functions: this.functions.all,
      tables: this.tables.tables,
      browserDoor: this.browserDoor,
      deviceListener: this.deviceListener,
      ...(settings.alarmEmail ? { alarmEmail: settings.alarmEmail } : {}),
    });

    this.outputs(settings.plainMqtt);
  }

  private outputs(plainMqtt: boolean): void {
    const host = this.deviceListener.hostName;
    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    output('MqttHost', host, 'The host name devices connect to (mosquitto_pub -h), on port 8883 over TLS');
    output('MqttTlsEndpoint', `mqtts://${host}:${publicPorts.mqttTls}`, 'MQTT over TLS, for devices');
    output('MqttWebSocketTlsEndpoint', `wss://${host}/mqtt`, 'MQTT over WebSocket (binary frames) through the load balancer');
    if (plainMqtt) output('MqttPlainEndpoint', `mqtt://${host}:${publicPorts.mqttPlain}`, 'Plain MQTT, unencrypted (context plainMqtt=true)');
    output('LoadBalancerDnsName', this.deviceListener.loadBalancer.loadBalancerDnsName, 'Point your domain (the certificate\'s name) here');
    const stackCertificate = this.deviceListener.stackCertificate;
    if (stackCertificate) {
      const parameter = stackCertificate.caCertificate.parameterName;
      output('CaCertificateParameter', parameter, "SSM parameter holding the stack's CA certificate (PEM), which clients trust");
      output(
        'CaCertificateCommand',
        `aws ssm get-parameter --region ${this.region} --name ${parameter} --query Parameter.Value --output text > ca.pem`,
        'Writes the CA certificate to ca.pem, for mosquitto_pub --cafile ca.pem',
      );
    }
    output('HttpPublishUrl', `${this.httpDoor.url}/topics/{topic}`, 'HTTP publish: POST the payload there, ?qos=0|1&retain=true|false (docs/http.md)');
    output('EventsUrl', `https://${host}/events?filter={filter}`, 'Server-sent events, served by the listener behind the load balancer\'s WebSocket port (docs/http.md)');
    output('BrowserWebSocketUrl', this.browserDoor.url, 'API Gateway WebSocket for browsers (MQTT in base64 text messages)');
    output('ConnectionsManagementEndpoint', this.browserDoor.managementEndpoint, 'API Gateway @connections endpoint the handlers deliver through');
    output('PacketHandlerFunction', this.handlers.packets.functionName, 'The Lambda the listener invokes');
    output('ListenerLogGroup', this.deviceListener.logGroup.logGroupName, 'The listener tasks\' logs');
    output('AlarmTopicArn', this.monitoring.alarmTopic.topicArn, 'Subscribe to get the alarms');
    output('DashboardUrl', this.monitoring.dashboardUrl, 'CloudWatch dashboard');
    for (const [tableId, table] of this.tables.tables) {
      output(`${tableId}TableName`, table.tableName, `DynamoDB ${tableId} table`);
    }
  }
}
