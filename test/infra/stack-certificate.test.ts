/** A deploy with no certificate context: the stack's own CA, its certificate in ACM through a custom resource, renewed daily. */
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { logicalId, synthBroker } from './stack-fixture';

const synthesized = synthBroker({}, { certificate: false });
const { template, stack } = synthesized;
const id = (construct: { node: { defaultChild?: unknown } }) => logicalId(synthesized, construct);

describe("the stack's own TLS certificate (no certificate context)", () => {
  const certificate = stack.deviceListener.stackCertificate!;
  const resourceId = stack.getLogicalId(certificate.resource.node.defaultChild as never);
  const loadBalancerId = id(stack.deviceListener.loadBalancer);
  const issuer = Object.entries(template.findResources('AWS::Lambda::Function')).find(([, fn]) => fn.Properties.Environment?.Variables?.CA_SECRET_ARN)!;
  const [issuerId, issuerFunction] = issuer;

  it('is a custom resource for the load balancer\'s DNS name, run by the issuer function through the Provider framework', () => {
    const resource = template.findResources('Custom::StackTlsCertificate')[resourceId]!;
    expect(resource.Properties.DnsName).toEqual({ 'Fn::GetAtt': [loadBalancerId, 'DNSName'] });
    expect(JSON.stringify(resource.Properties.ServiceToken)).toContain('ProviderframeworkonEvent');
    expect(issuerFunction.Properties).toMatchObject({ Runtime: 'nodejs24.x', Timeout: 300, Handler: 'index.handler' });
    expect(issuerFunction.Properties.VpcConfig).toBeUndefined();
  });

  it('both TLS listeners use the certificate the resource imported, and nothing the resource needs waits for them (no cycle)', () => {
    const listeners = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::Listener')).map((l) => l.Properties);
    const tls = listeners.filter((l) => l.Protocol === 'TLS');
    expect(tls.map((l) => l.Port).sort()).toEqual([443, 8883]);
    for (const listener of tls) expect(listener.Certificates).toEqual([{ CertificateArn: { 'Fn::GetAtt': [resourceId, 'CertificateArn'] } }]);
    const listenerIds = Object.keys(template.findResources('AWS::ElasticLoadBalancingV2::Listener'));
    const resource = template.findResources('Custom::StackTlsCertificate')[resourceId]!;
    for (const listenerId of listenerIds) expect(JSON.stringify(resource)).not.toContain(`"${listenerId}"`);
    const loadBalancer = template.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer')[loadBalancerId]!;
    expect(JSON.stringify(loadBalancer)).not.toContain(resourceId);
  });

  it('keeps the CA in a Secrets Manager secret only the issuer reads and writes', () => {
    const secretId = id(certificate.caSecret);
    expect(issuerFunction.Properties.Environment.Variables.CA_SECRET_ARN).toEqual({ Ref: secretId });
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) => JSON.stringify(p.Properties.PolicyDocument).includes(secretId));
    expect(policies).toHaveLength(1);
    const statements = policies[0]!.Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>;
    const onSecret = statements.filter((s) => JSON.stringify(s.Resource).includes(secretId)).flatMap((s) => [s.Action].flat());
    expect(onSecret).toEqual(expect.arrayContaining(['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue']));
    expect(JSON.stringify(policies[0]!.Properties.Roles)).toContain(issuerFunction.Properties.Role['Fn::GetAtt'][0]);
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['acm:ImportCertificate', 'acm:DescribeCertificate', 'acm:DeleteCertificate'],
            Resource: { 'Fn::Join': ['', Match.arrayWith([':acm:', ':certificate/*'])] },
          }),
        ]),
      },
    });
  });

  it("puts the CA's certificate in an SSM parameter and outputs how to fetch it for --cafile", () => {
    template.hasResourceProperties('AWS::SSM::Parameter', { Type: 'String', Value: { 'Fn::GetAtt': [resourceId, 'CaCertificate'] } });
    const outputs = template.findOutputs('*');
    expect(outputs.CaCertificateParameter!.Value).toEqual({ Ref: id(certificate.caCertificate) });
    expect(JSON.stringify(outputs.CaCertificateCommand!.Value)).toMatch(/aws ssm get-parameter --region .*--name .*--query Parameter.Value --output text > ca.pem/);
    expect(outputs.MqttHost!.Value).toEqual({ 'Fn::GetAtt': [loadBalancerId, 'DNSName'] });
  });

  it('a daily rule invokes the issuer to renew the same certificate ARN for the same name', () => {
    const rule = Object.values(template.findResources('AWS::Events::Rule')).find((r) => r.Properties.ScheduleExpression === 'rate(1 day)')!;
    const [target] = rule.Properties.Targets;
    expect(target.Arn).toEqual({ 'Fn::GetAtt': [issuerId, 'Arn'] });
    const input = JSON.stringify(target.Input);
    expect(input).toContain('renew');
    expect(input).toContain(`"${resourceId}","CertificateArn"`);
    expect(input).toContain(`"${loadBalancerId}","DNSName"`);
    template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com', FunctionName: { 'Fn::GetAtt': [issuerId, 'Arn'] } });
  });

  it('the issuer has the alarms every function has: a failed renewal alarms', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    const onIssuer = alarms.filter((a) => JSON.stringify(a.Dimensions) === JSON.stringify([{ Name: 'FunctionName', Value: { Ref: issuerId } }]));
    expect(onIssuer.map((a) => a.MetricName).sort()).toEqual(['Errors', 'Throttles']);
  });
});

describe('with a certificate from the context', () => {
  it('makes no CA, no custom resource and no renewal', () => {
    const { template, stack } = synthBroker();
    expect(stack.deviceListener.stackCertificate).toBeUndefined();
    template.resourceCountIs('Custom::StackTlsCertificate', 0);
    template.resourceCountIs('AWS::SSM::Parameter', 0);
    expect(Object.keys(template.findOutputs('*'))).not.toContain('CaCertificateCommand');
  });
});
