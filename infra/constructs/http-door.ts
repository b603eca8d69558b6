import { Validations, type RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface HttpDoorProps {
  /** The function behind `POST /topics/{proxy+}` (functions/http-publish.ts). */
  readonly publish: IFunction;
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * Requests a second the stage admits (and its burst): a tenth of the account's 10,000 a second,
 * which every API Gateway API of the account and region shares with the `@connections` calls
 * that deliver to browsers, so HTTP publishers cannot starve the WebSocket door.
 */
export const HTTP_PUBLISH_THROTTLE = { rateLimit: 1_000, burstLimit: 2_000 } as const;

/**
 * HTTP publish: an API Gateway HTTP API whose one route, `POST /topics/{proxy+}`, invokes the
 * http-publish function with the payload format 2.0 event; one `$default` stage, throttled, with
 * access logs. Server-sent events are not here: an HTTP API cuts a response at 30 s, so the stream
 * is served by the device listener, behind the load balancer's WebSocket port (docs/http.md).
 */
export class HttpDoor extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;

  constructor(scope: Construct, id: string, props: HttpDoorProps) {
    super(scope, id);
    this.api = new HttpApi(this, 'Api', { description: 'HTTP publish: POST /topics/{topic}?qos=0|1&retain=true|false', createDefaultStage: false });
    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
    this.stage = new HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: HTTP_PUBLISH_THROTTLE,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTimeEpoch',
            routeKey: '$context.routeKey',
            path: '$context.path',
            sourceIp: '$context.identity.sourceIp',
            status: '$context.status',
            responseLength: '$context.responseLength',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    const [route] = this.api.addRoutes({ path: '/topics/{proxy+}', methods: [HttpMethod.POST], integration: new HttpLambdaIntegration('Publish', props.publish) });
    Validations.of(route!).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: "The function authenticates each request as a CONNECT: Basic credentials against the broker's users, or a bearer JWT under the broker's JWT settings",
    });
  }

  /** `https://{api}.execute-api.{region}.amazonaws.com`: POST `/topics/{topic}` there. */
  get url(): string {
    return this.api.apiEndpoint;
  }
}
