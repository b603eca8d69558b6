import { RemovalPolicy, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import { LogGroupLogDestination, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { ManagedPolicy, Role, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ConnectionsManagement } from './broker-functions';

export interface BrowserDoorProps {
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export type WebSocketRouteKey = '$connect' | '$disconnect' | '$default';

/**
 * The browsers' door: an API Gateway WebSocket API whose `$connect`, `$default` and
 * `$disconnect` routes invoke the broker's handlers, one stage with access logs, and its
 * `@connections` management API for the handlers that deliver to browsers.
 */
export class BrowserDoor extends Construct implements ConnectionsManagement {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;

  constructor(scope: Construct, id: string, props: BrowserDoorProps) {
    super(scope, id);
    this.api = new WebSocketApi(this, 'Api', {
      description: 'MQTT over WebSocket for browsers (MQTT packets base64-encoded in text messages)',
    });

    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: 'mqtt',
      autoDeploy: true,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTimeEpoch',
            eventType: '$context.eventType',
            routeKey: '$context.routeKey',
            connectionId: '$context.connectionId',
            sourceIp: '$context.identity.sourceIp',
            status: '$context.status',
            error: '$context.error.message',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    this.stage.node.addDependency(apiGatewayLoggingRole(this));
  }

  /** `https://{api}.execute-api.{region}.amazonaws.com/mqtt`: where handlers POST to browsers. */
  get managementEndpoint(): string {
    return this.stage.callbackUrl;
  }

  /** `wss://{api}.execute-api.{region}.amazonaws.com/mqtt`: where browsers connect. */
  get url(): string {
    return this.stage.url;
  }

  route(routeKey: WebSocketRouteKey, handler: IFunction): void {
    const route = this.api.addRoute(routeKey, { integration: new WebSocketLambdaIntegration(routeKey.slice(1), handler) });
    Validations.of(route).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'MQTT authenticates inside the protocol (CONNECT user name and password, AUTH), which the packet handlers check; a $connect authorizer sees only the WebSocket handshake',
    });
  }

  /** Manage connections of this API only (`{api}/*\/*\/@connections/*`), no other. */
  grantManageConnections(grantee: IGrantable): void {
    this.api.grantManageConnections(grantee);
    const apiLogicalId = Stack.of(this).getLogicalId(this.api.node.defaultChild as CfnElement);
    Validations.of(grantee.grantPrincipal instanceof Construct ? grantee.grantPrincipal : this).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/*/*/@connections/*]`,
      reason: "Connection ids are API Gateway's, made at run time: the grant covers every connection of this one API and no other API",
    });
  }
}

/**
 * Access logs on a WebSocket stage need API Gateway's account-wide CloudWatch role, or the stage
 * fails to deploy ("CloudWatch Logs role ARN must be set in account settings"). The role is
 * retained when the stack goes, since other APIs in the account may come to rely on it.
 */
function apiGatewayLoggingRole(scope: Construct): CfnAccount {
  const role = new Role(scope, 'ApiGatewayLoggingRole', {
    assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
    managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
  });
  role.applyRemovalPolicy(RemovalPolicy.RETAIN);
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    reason: "API Gateway's own managed policy for its account-wide logging role; it only writes CloudWatch logs",
  });
  const account = new CfnAccount(scope, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
  account.node.addDependency(role);
  return account;
}
