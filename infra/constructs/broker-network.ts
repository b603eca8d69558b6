import { RemovalPolicy } from 'aws-cdk-lib';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
  type SubnetSelection,
} from 'aws-cdk-lib/aws-ec2';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface BrokerNetworkProps {
  readonly natGateways: number;
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The VPC. Two AZs; the load balancer in the public subnets; the listener tasks and every Lambda
 * that delivers to devices in the private subnets, where a handler reaches a task's delivery
 * endpoint on its private address.
 *
 * Egress, cheapest correct at idle:
 * - DynamoDB and S3 (ECR's image layers) through gateway endpoints: free, and off the NAT.
 * - Everything else through NAT: API Gateway's `@connections` API (the VPC Lambdas deliver to
 *   browsers), Lambda Invoke (the listener), ECR and CloudWatch Logs. An execute-api interface
 *   endpoint cannot replace it: API Gateway answers ForbiddenException to `@connections` calls
 *   through one, since it serves only private REST APIs. Interface endpoints for the other four
 *   services would cost more at idle than one NAT gateway (4 services x 2 AZs x $7.30/month).
 */
export class BrokerNetwork extends Construct {
  readonly vpc: Vpc;
  readonly privateSubnets: SubnetSelection = { subnetType: SubnetType.PRIVATE_WITH_EGRESS };
  readonly publicSubnets: SubnetSelection = { subnetType: SubnetType.PUBLIC };
  /** Lambdas that deliver to devices: the one source the listener's delivery port admits. */
  readonly deliveryClients: SecurityGroup;

  constructor(scope: Construct, id: string, props: BrokerNetworkProps) {
    super(scope, id);
    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: props.natGateways,
      subnetConfiguration: [
        { name: 'Public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'Private', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      gatewayEndpoints: {
        DynamoDb: { service: GatewayVpcEndpointAwsService.DYNAMODB, subnets: [this.privateSubnets] },
        S3: { service: GatewayVpcEndpointAwsService.S3, subnets: [this.privateSubnets] },
      },
    });

    // Rejected traffic only: what a security review asks for, without paying to log every MQTT flow.
    const flowLogs = new LogGroup(this, 'RejectedFlows', { retention: props.logRetention, removalPolicy: props.removalPolicy });
    this.vpc.addFlowLog('RejectedFlowLog', {
      destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: FlowLogTrafficType.REJECT,
    });

    this.deliveryClients = new SecurityGroup(this, 'DeliveryClients', {
      vpc: this.vpc,
      description: 'Broker Lambdas: HTTPS out (DynamoDB, API Gateway @connections) and the listener delivery port',
      allowAllOutbound: false,
    });
    // No internet route but NAT and the gateway endpoints: 443 reaches AWS APIs only.
    this.deliveryClients.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'AWS APIs over HTTPS (DynamoDB endpoint, API Gateway through NAT)');
  }
}
