import { Duration, IgnoreMode, Stack, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import { Certificate, CertificateValidation } from 'aws-cdk-lib/aws-certificatemanager';
import { Peer, Port, SecurityGroup, type IVpc } from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  Cluster,
  ContainerImage,
  ContainerInsights,
  CpuArchitecture,
  FargateService,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
  Secret as EcsSecret,
} from 'aws-cdk-lib/aws-ecs';
import {
  ListenerCertificate,
  NetworkLoadBalancer,
  NetworkTargetGroup,
  Protocol,
  SslPolicy,
  TargetType,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFn, IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { ARecord, HostedZone, RecordTarget } from 'aws-cdk-lib/aws-route53';
import { LoadBalancerTarget } from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import type { CertificateSource } from '../deploy-context';
import { LISTENER_TLS_PORT, type MutualTlsContext } from '../mutual-tls-context';
import { repositoryRoot } from './broker-functions';
import type { BrokerNetwork } from './broker-network';
import { scaleListener, type ListenerTaskMetrics } from './listener-scaling';
import { LISTENER_METRICS } from '../../shared/listener/listener-metrics';
import { StackCertificate } from './stack-certificate';

/** Ports of the listener container (functions/listener/main.ts) and of the load balancer. */
export const listenerPorts = { mqtt: 1883, mqttWebSocket: 8083, delivery: 8090 } as const;
export const publicPorts = { mqttTls: 8883, mqttWebSocketTls: 443, mqttPlain: 1883 } as const;

/** Seconds ECS waits after SIGTERM before SIGKILL (its most); the listener drains in waves over 60 s and is done within 100 s. */
const STOP_TIMEOUT = Duration.seconds(120);

export interface DeviceListenerProps {
  readonly network: BrokerNetwork;
  readonly packetHandler: IFunction;
  /** The secret deliveries are signed with: ECS puts it in the container's DELIVERY_SECRET at start. */
  readonly deliverySecret: ISecret;
  readonly certificate: CertificateSource;
  /** functions/stack-certificate.ts: required when the certificate's kind is 'stack'. */
  readonly certificateIssuer?: LambdaFn;
  readonly plainMqtt: boolean;
  readonly minTasks: number;
  readonly maxTasks: number;
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly logLevel: string;
  /** The listener's settings from the context (infra/broker-settings.ts). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Devices present certificates: 8883 passes through to the listener's own TLS port (infra/mutual-tls-context.ts). */
  readonly mutualTls?: MutualTlsContext;
}

/**
 * The devices' door: the listener (functions/listener, its Dockerfile) as a Fargate service on
 * arm64 in the private subnets, behind an internet-facing NLB that terminates TLS: MQTT on 8883
 * to the listener's 1883, MQTT over WebSocket on 443 to its 8083, plain MQTT on 1883 only when
 * asked for. Security groups admit exactly: the NLB on the two MQTT ports, and the broker's
 * Lambdas on the delivery port. Both target groups send a PROXY protocol v2 header before each
 * connection's bytes, and the listener requires it (MQTT_PROXY_PROTOCOL): IP targets see the
 * client's address no other way, and the listener caps connections per client address.
 * With `mutualTls`, 8883 is a TCP listener instead, passing TLS through to the listener's own
 * TLS port (8883), which verifies device certificates (the NLB's mutual TLS verify mode hands
 * targets no client identity, docs/deploy.md); the task's execution role reads the server
 * certificate and key from the named secret when a task starts.
 */
export class DeviceListener extends Construct {
  readonly loadBalancer: NetworkLoadBalancer;
  readonly service: FargateService;
  readonly taskDefinition: FargateTaskDefinition;
  /** `mqtt` (to the tasks' 1883) unless devices present certificates without plain MQTT; `mqttTls` (to their 8883) only then. */
  readonly targetGroups: { readonly mqtt?: NetworkTargetGroup; readonly mqttWebSocket: NetworkTargetGroup; readonly mqttTls?: NetworkTargetGroup };
  readonly securityGroup: SecurityGroup;
  readonly loadBalancerSecurityGroup: SecurityGroup;
  /** The host name clients use: the certificate's domain when known, else the NLB's DNS name. */
  readonly hostName: string;
  readonly logGroup: LogGroup;
  /** Connections and invocations in flight per task, as the tasks report them and autoscaling reads them. */
  readonly taskMetrics: ListenerTaskMetrics;
  /** The certificate the stack made, when the context named none. */
  readonly stackCertificate?: StackCertificate;
  private readonly vpc: IVpc;

  constructor(scope: Construct, id: string, props: DeviceListenerProps) {
    super(scope, id);
    const { network } = props;
    const vpc = (this.vpc = network.vpc);

    this.loadBalancerSecurityGroup = new SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc,
      description: 'MQTT load balancer: TLS from anywhere, TCP to the listener tasks',
      allowAllOutbound: false,
    });
    this.securityGroup = new SecurityGroup(this, 'TaskSecurityGroup', {
      vpc,
      description: 'MQTT listener tasks: MQTT from the load balancer, deliveries from the broker Lambdas, HTTPS out',
      allowAllOutbound: false,
    });
    // Lambda Invoke, ECR and CloudWatch Logs, all over HTTPS through NAT (S3 through its gateway endpoint).
    this.securityGroup.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'AWS APIs over HTTPS');
    // With device certificates, the tasks' plain MQTT port is reached only when plain MQTT is asked for.
    const plainTargets = !props.mutualTls || props.plainMqtt;
    const mqttPorts = [...(plainTargets ? [listenerPorts.mqtt] : []), listenerPorts.mqttWebSocket, ...(props.mutualTls ? [LISTENER_TLS_PORT] : [])];
    for (const port of mqttPorts) {
      this.securityGroup.connections.allowFrom(this.loadBalancerSecurityGroup, Port.tcp(port), 'MQTT from the load balancer');
    }
    this.securityGroup.connections.allowFrom(network.deliveryClients, Port.tcp(listenerPorts.delivery), 'deliveries from the broker Lambdas');

    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
    this.taskDefinition = new FargateTaskDefinition(this, 'Task', {
      cpu: 256,
      memoryLimitMiB: 512,
      runtimePlatform: { cpuArchitecture: CpuArchitecture.ARM64, operatingSystemFamily: OperatingSystemFamily.LINUX },
    });
    this.taskDefinition.addContainer('listener', {
      image: ContainerImage.fromAsset(repositoryRoot, {
        file: 'functions/listener/Dockerfile',
        platform: Platform.LINUX_ARM64,
        // The build context is what the Dockerfile copies, not the whole checkout (node_modules, cdk.out).
        ignoreMode: IgnoreMode.DOCKER,
        exclude: ['*', '!package.json', '!package-lock.json', '!tsconfig.json', '!shared', '!functions'],
      }),
      environment: {
        PACKET_HANDLER_FUNCTION: props.packetHandler.functionArn,
        MQTT_PORT: String(listenerPorts.mqtt),
        MQTT_WS_PORT: String(listenerPorts.mqttWebSocket),
        DELIVERY_PORT: String(listenerPorts.delivery),
        LOG_LEVEL: props.logLevel,
        AWS_REGION: Stack.of(this).region,
        ...props.environment,
        ...props.mutualTls?.environment,
        // The target groups below send the header; the listener closes a socket without it.
        MQTT_PROXY_PROTOCOL: 'true',
      },
      // Read by the task's execution role when the task starts; the task role cannot read them.
      secrets: { DELIVERY_SECRET: EcsSecret.fromSecretsManager(props.deliverySecret), ...this.serverTlsSecrets(props.mutualTls) },
      portMappings: [...Object.values(listenerPorts), ...(props.mutualTls ? [LISTENER_TLS_PORT] : [])].map((containerPort) => ({ containerPort })),
      logging: LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'listener' }),
      readonlyRootFilesystem: true,
      stopTimeout: STOP_TIMEOUT,
    });
    // The listener's one permission: invoke the packet handler (unqualified, as main.ts does).
    this.taskDefinition.addToTaskRolePolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.packetHandler.functionArn] }),
    );

    const cluster = new Cluster(this, 'Cluster', { vpc, containerInsightsV2: ContainerInsights.DISABLED });
    this.service = new FargateService(this, 'Service', {
      cluster,
      taskDefinition: this.taskDefinition,
      // No desiredCount: autoscaling owns it, so a deployment does not reset a scaled-out service.
      vpcSubnets: network.privateSubnets,
      securityGroups: [this.securityGroup],
      assignPublicIp: false,
      // Start the new task before stopping the old: the old one drains into it.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
    });
    // Each task reports its connections and invocations in flight under the cluster's name.
    this.taskDefinition.defaultContainer!.addEnvironment(LISTENER_METRICS.envVar, cluster.clusterName);
    this.taskMetrics = scaleListener(this.service, cluster, { min: props.minTasks, max: props.maxTasks });

    this.loadBalancer = new NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: true,
      vpcSubnets: network.publicSubnets,
      securityGroups: [this.loadBalancerSecurityGroup],
      // With one task in one AZ, the other AZ's load balancer node must still reach it.
      crossZoneEnabled: true,
    });
    this.targetGroups = {
      ...(plainTargets ? { mqtt: this.targetGroup('MqttTargets', listenerPorts.mqtt) } : {}),
      mqttWebSocket: this.targetGroup('MqttWebSocketTargets', listenerPorts.mqttWebSocket),
      ...(props.mutualTls ? { mqttTls: this.targetGroup('MqttTlsTargets', LISTENER_TLS_PORT) } : {}),
    };

    let certificate: ListenerCertificate;
    if (props.certificate.kind === 'stack') {
      if (!props.certificateIssuer) throw new Error("DeviceListener: a certificate of kind 'stack' needs the certificateIssuer function");
      this.stackCertificate = new StackCertificate(this, 'StackCertificate', {
        dnsName: this.loadBalancer.loadBalancerDnsName,
        issuer: props.certificateIssuer,
        logRetention: props.logRetention,
        removalPolicy: props.removalPolicy,
      });
      certificate = ListenerCertificate.fromArn(this.stackCertificate.certificateArn);
    } else {
      certificate = this.certificate(props.certificate);
    }
    this.hostName = props.certificate.domainName ?? this.loadBalancer.loadBalancerDnsName;
    const tls = { protocol: Protocol.TLS, certificates: [certificate], sslPolicy: SslPolicy.RECOMMENDED_TLS };
    // Device certificates: the listener terminates TLS on 8883, so the NLB passes the bytes through.
    const { mqtt, mqttTls } = this.targetGroups;
    if (mqttTls) this.listen('MqttTls', publicPorts.mqttTls, mqttTls, { protocol: Protocol.TCP });
    else if (mqtt) this.listen('MqttTls', publicPorts.mqttTls, mqtt, tls);
    this.listen('MqttWebSocketTls', publicPorts.mqttWebSocketTls, this.targetGroups.mqttWebSocket, tls);
    if (props.plainMqtt && mqtt) this.listen('MqttPlain', publicPorts.mqttPlain, mqtt, { protocol: Protocol.TCP });

    this.acknowledgeFindings();
  }

  private targetGroup(id: string, port: number): NetworkTargetGroup {
    const group = new NetworkTargetGroup(this, id, {
      vpc: this.vpc,
      port,
      protocol: Protocol.TCP,
      targetType: TargetType.IP,
      // ECS waits this long after taking a task out of the group before SIGTERM; the connections
      // stay open meanwhile (no connection termination), so the drain can still reach them.
      deregistrationDelay: Duration.seconds(10),
      connectionTermination: false,
      // The client's address, for the listener's per-address cap and the delivery endpoint's Identity.SourceIp.
      proxyProtocolV2: true,
      healthCheck: { protocol: Protocol.TCP, port: String(port), interval: Duration.seconds(10), healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
    });
    group.addTarget(this.service.loadBalancerTarget({ containerName: 'listener', containerPort: port }));
    return group;
  }

  /** The server certificate and key for the listener's own TLS port, from the operator's secret (JSON fields cert and key). */
  private serverTlsSecrets(mutualTls: MutualTlsContext | undefined): Record<string, EcsSecret> {
    if (!mutualTls) return {};
    const secret = Secret.fromSecretCompleteArn(this, 'ServerTlsSecret', mutualTls.serverSecretArn);
    return { MQTT_TLS_CERT: EcsSecret.fromSecretsManager(secret, 'cert'), MQTT_TLS_KEY: EcsSecret.fromSecretsManager(secret, 'key') };
  }

  /** A public port of the load balancer, forwarding to a target group of the listener tasks. */
  private listen(
    id: string,
    port: number,
    targetGroup: NetworkTargetGroup,
    options: { protocol: Protocol; certificates?: ListenerCertificate[]; sslPolicy?: SslPolicy },
  ): void {
    this.loadBalancer.addListener(id, { port, defaultTargetGroups: [targetGroup], ...options });
    this.loadBalancerSecurityGroup.addIngressRule(Peer.anyIpv4(), Port.tcp(port), `${id}: clients connect from anywhere`);
  }

  private certificate(source: Exclude<CertificateSource, { kind: 'stack' }>): ListenerCertificate {
    if (source.kind === 'arn') return ListenerCertificate.fromArn(source.certificateArn);
    const zone = HostedZone.fromHostedZoneId(this, 'Zone', source.hostedZoneId);
    const certificate = new Certificate(this, 'Certificate', {
      domainName: source.domainName,
      validation: CertificateValidation.fromDns(zone),
    });
    // A trailing dot: a fully qualified name, so the zone's own name need not be known.
    new ARecord(this, 'Alias', { zone, recordName: `${source.domainName}.`, target: RecordTarget.fromAlias(new LoadBalancerTarget(this.loadBalancer)) });
    return ListenerCertificate.fromCertificateManager(certificate);
  }

  private acknowledgeFindings(): void {
    Validations.of(this.loadBalancerSecurityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: 'A public MQTT endpoint: devices and browsers connect from any address, over TLS (plain 1883 only when the deployer asks for it)',
    });
    Validations.of(this.loadBalancer).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason:
        'NLB access logs need an S3 bucket that outlives the stack; the listener logs every connection it opens and closes, and VPC flow logs record rejected traffic',
    });
    Validations.of(this.service.cluster).acknowledge({
      id: 'AwsSolutions-ECS4',
      reason: "Container Insights bills many custom metrics even at idle; autoscaling and the dashboard read the tasks' own two metrics (Embedded Metric Format) and the service's free AWS/ECS CPU and memory metrics",
    });
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: "The execution role's ecr:GetAuthorizationToken has no resource-level permissions; the image pull itself is scoped to the asset repository",
    });
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds configuration only (the packet handler ARN, ports, log level, region, the limits from the context); the delivery secret comes from Secrets Manager',
    });
  }
}
