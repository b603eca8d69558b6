/**
 * Device certificates as a deploy option (infra/mutual-tls-context.ts): the NLB passes 8883
 * through as TCP to the listener's own TLS port, the container gets the CA, CRL and identity
 * field in its environment and the server certificate and key from the named secret (read by the
 * execution role only), and a mistake stops synthesis with one line.
 */
import { App } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { BrokerStack } from '../../infra/broker-stack';
import { readDeployContext } from '../../infra/deploy-context';
import { createCertificateAuthority, issueDeviceCertificate, revocationList, writePemFiles } from '../support/device-certificates';
import { logicalId, synthBroker, TEST_CERTIFICATE_ARN, type Synthesized } from './stack-fixture';

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:111111111111:secret:mqtt/device-tls-AbCdEf';

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

let files: Record<string, string>;
let pems: { ca: string; crl: string };
let synthesized: Synthesized;

beforeAll(async () => {
  const ca = await createCertificateAuthority('device CA');
  const crl = await revocationList(ca, [await issueDeviceCertificate(ca, 'revoked')]);
  pems = { ca: ca.certificate, crl };
  files = writePemFiles({ ca: ca.certificate, crl, notPem: 'just text' });
  synthesized = synthBroker({ deviceCaFile: files.ca, deviceCrlFile: files.crl, deviceIdentity: 'san-dns', serverTlsSecretArn: SECRET_ARN });
});

const container = (s: Synthesized) =>
  (Object.values(s.template.findResources('AWS::ECS::TaskDefinition'))[0]!.Properties.ContainerDefinitions as Array<Record<string, unknown>>)[0]!;

describe('device certificates (mutual TLS) deployed', () => {
  it('8883 is a TCP listener passing TLS through to the tasks\' 8883; 443 is still terminated by the NLB', () => {
    const { template, stack } = synthesized;
    const listeners = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::Listener')).map((l) => l.Properties);
    const tlsTargets = logicalId(synthesized, stack.deviceListener.targetGroups.mqttTls!);
    expect(listeners.find((l) => l.Port === 8883)).toEqual(
      expect.objectContaining({ Protocol: 'TCP', DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: tlsTargets } }] }),
    );
    expect(listeners.find((l) => l.Port === 8883)).not.toHaveProperty('Certificates');
    expect(listeners.find((l) => l.Port === 443)).toMatchObject({ Protocol: 'TLS', Certificates: [{ CertificateArn: TEST_CERTIFICATE_ARN }] });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 8883,
      Protocol: 'TCP',
      TargetType: 'ip',
      HealthCheckPort: '8883',
      TargetGroupAttributes: Match.arrayWith([{ Key: 'proxy_protocol_v2.enabled', Value: 'true' }]),
    });
  });

  it('the tasks admit 8883 from the load balancer only, and alarm when no task is healthy on it', () => {
    const { template, stack } = synthesized;
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 8883,
      ToPort: 8883,
      GroupId: { 'Fn::GetAtt': [logicalId(synthesized, stack.deviceListener.securityGroup), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [logicalId(synthesized, stack.deviceListener.loadBalancerSecurityGroup), 'GroupId'] },
    });
    const alarms = Object.keys(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.some((name) => name.includes('MqttTlsNoHealthyTargets'))).toBe(true);
  });

  it('the container serves TLS on 8883 with the CA, the CRL and the identity field in its environment, the certificate and key from the secret', () => {
    const definition = container(synthesized);
    expect(definition.Environment).toEqual(
      expect.arrayContaining([
        { Name: 'MQTT_TLS_PORT', Value: '8883' },
        { Name: 'MQTT_TLS_CLIENT_CA', Value: pems.ca },
        { Name: 'MQTT_TLS_CRL', Value: pems.crl },
        { Name: 'MQTT_TLS_IDENTITY', Value: 'san-dns' },
        { Name: 'MQTT_PROXY_PROTOCOL', Value: 'true' },
      ]),
    );
    const secrets = definition.Secrets as Array<{ Name: string; ValueFrom: unknown }>;
    expect(secrets.map((s) => s.Name).sort()).toEqual(['DELIVERY_SECRET', 'MQTT_TLS_CERT', 'MQTT_TLS_KEY']);
    expect(JSON.stringify(secrets.find((s) => s.Name === 'MQTT_TLS_CERT')!.ValueFrom)).toMatch(/secret:mqtt\/device-tls-AbCdEf:cert::/);
    expect(JSON.stringify(secrets.find((s) => s.Name === 'MQTT_TLS_KEY')!.ValueFrom)).toMatch(/secret:mqtt\/device-tls-AbCdEf:key::/);
    expect(definition.PortMappings).toEqual(expect.arrayContaining([expect.objectContaining({ ContainerPort: 8883 })]));
  });

  it("only the task's execution role may read the server key's secret", () => {
    const { template, stack } = synthesized;
    const readers = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([, p]) =>
      (p.Properties.PolicyDocument.Statement as Statement[]).some((s) => JSON.stringify(s.Resource).includes('secret:mqtt/device-tls-AbCdEf')),
    );
    const executionRole = logicalId(synthesized, stack.deviceListener.taskDefinition.obtainExecutionRole());
    expect(readers.flatMap(([, p]) => (p.Properties.Roles as Array<{ Ref: string }>).map((r) => r.Ref))).toEqual([executionRole]);
    const statement = (readers[0]![1].Properties.PolicyDocument.Statement as Statement[]).find((s) => JSON.stringify(s.Resource).includes('secret:mqtt/device-tls-AbCdEf'))!;
    expect(statement.Action).toEqual(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret']);
  });

  it("cdk-nag's AwsSolutions rules find nothing unacknowledged, with the stack's own certificate for 443 too", () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], deviceCaFile: files.ca, serverTlsSecretArn: SECRET_ARN } });
    new BrokerStack(app, 'Nag');
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.resourceLogicalId).join(', ')}`)).toEqual([]);
  });

  it('without the option, 8883 is terminated by the NLB and the container has no TLS port', () => {
    const plain = synthBroker();
    const definition = container(plain);
    expect((definition.Environment as Array<{ Name: string }>).map((e) => e.Name)).not.toContain('MQTT_TLS_PORT');
    expect(plain.stack.deviceListener.targetGroups.mqttTls).toBeUndefined();
  });
});

describe('device certificates: a mistake stops synthesis with one line', () => {
  const read = (context: Record<string, unknown>) => () => readDeployContext(new App({ context: { certificateArn: TEST_CERTIFICATE_ARN, ...context } }).node);

  it.each([
    ['context deviceCaFile needs serverTlsSecretArn (the complete ARN of a Secrets Manager secret holding {"cert"', () => ({ deviceCaFile: files.ca })],
    ['context serverTlsSecretArn needs deviceCaFile (a PEM file', () => ({ serverTlsSecretArn: SECRET_ARN })],
    ['context deviceIdentity needs deviceCaFile', () => ({ deviceIdentity: 'cn' })],
    ['context deviceCaFile: cannot read /nonexistent/ca.pem (ENOENT); pass the path of a PEM file', () => ({ deviceCaFile: '/nonexistent/ca.pem', serverTlsSecretArn: SECRET_ARN })],
    ['is not a PEM file', () => ({ deviceCaFile: files.notPem, serverTlsSecretArn: SECRET_ARN })],
    ['context deviceIdentity must be cn, san-dns, san-email, got "serial"', () => ({ deviceCaFile: files.ca, deviceIdentity: 'serial', serverTlsSecretArn: SECRET_ARN })],
    ['context serverTlsSecretArn must be a secret\'s complete ARN', () => ({ deviceCaFile: files.ca, serverTlsSecretArn: 'mqtt/device-tls' })],
    ['context deviceCrlFile must be PEM certificate revocation lists', () => ({ deviceCaFile: files.ca, deviceCrlFile: files.ca, serverTlsSecretArn: SECRET_ARN })],
  ])('%s', (message, context) => {
    expect(read(context())).toThrow(message);
    try {
      read(context())();
    } catch (error) {
      expect((error as Error).message).not.toContain('\n');
    }
  });
});
