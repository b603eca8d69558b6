/**
 * HTTP publish in the cloud: the HTTP API's one route, its Lambda integration, the stage's
 * throttling and access logs, and who may invoke the function. Its IAM on the tables is in
 * least-privilege.test.ts, with every other function's.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { HTTP_PUBLISH_THROTTLE } from '../../infra/constructs/http-door';
import { logicalId, synthBroker } from './stack-fixture';

const synthesized = synthBroker();
const { template, stack } = synthesized;
const id = (construct: { node: { defaultChild?: unknown } }) => logicalId(synthesized, construct);
const api = () => id(stack.httpDoor.api);

describe('HTTP publish door', () => {
  it('an HTTP API with one route, POST /topics/{proxy+}, to the http-publish function with the payload format 2.0', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 2); // this one and the browsers' WebSocket API
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).filter((r) => JSON.stringify(r.Properties.ApiId) === JSON.stringify({ Ref: api() }));
    expect(routes.map((r) => r.Properties.RouteKey)).toEqual(['POST /topics/{proxy+}']);
    const integrations = Object.entries(template.findResources('AWS::ApiGatewayV2::Integration')).filter(([, r]) => JSON.stringify(r.Properties.ApiId) === JSON.stringify({ Ref: api() }));
    expect(integrations).toHaveLength(1);
    const [integrationId, integration] = integrations[0]!;
    expect(integration.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0', IntegrationUri: { 'Fn::GetAtt': [id(stack.httpPublish), 'Arn'] } });
    expect(routes[0]!.Properties.Target).toEqual({ 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] });
    expect(template.findResources('AWS::Lambda::Function')[id(stack.httpPublish)]!.Properties.Handler).toBe('index.handler');
  });

  it('its one stage is throttled and writes access logs', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: api() },
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: HTTP_PUBLISH_THROTTLE.rateLimit, ThrottlingBurstLimit: HTTP_PUBLISH_THROTTLE.burstLimit },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
    });
  });

  it('API Gateway may invoke the http-publish function from this HTTP API only, and no other function from it', () => {
    const fromHttpApi = Object.values(template.findResources('AWS::Lambda::Permission'))
      .map((p) => p.Properties)
      .filter((p) => JSON.stringify(p.SourceArn).includes(JSON.stringify({ Ref: api() })));
    expect(fromHttpApi.length).toBeGreaterThan(0);
    for (const p of fromHttpApi) {
      expect(p).toMatchObject({ Action: 'lambda:InvokeFunction', Principal: 'apigateway.amazonaws.com', FunctionName: { 'Fn::GetAtt': [id(stack.httpPublish), 'Arn'] } });
      expect(JSON.stringify(p.SourceArn)).toContain('/topics/');
    }
  });

  it('the function routes like a PUBLISH: the table names, the fan-out worker, the VPC the delivery port admits', () => {
    const fn = template.findResources('AWS::Lambda::Function')[id(stack.httpPublish)]!.Properties;
    expect(Object.keys(fn.Environment.Variables)).toEqual(expect.arrayContaining(['CONNECTIONS_TABLE', 'SESSIONS_TABLE', 'SUBSCRIPTIONS_TABLE', 'RETAINED_TABLE', 'SECURITY_TABLE', 'FANOUT_FUNCTION', 'DELIVERY_SECRET_ARN']));
    expect(fn.VpcConfig.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [id(stack.network.deliveryClients), 'GroupId'] }]);
    expect(fn.Timeout).toBe(29);
  });

  it('outputs the publish URL and the events URL on the load balancer', () => {
    const outputs = template.findOutputs('*');
    expect(JSON.stringify(outputs.HttpPublishUrl!.Value)).toContain('/topics/{topic}');
    expect(JSON.stringify(outputs.EventsUrl!.Value)).toContain('/events?filter={filter}');
  });
});
