/**
 * cdk-nag's AwsSolutions rules over the stack as `cdk synth` builds it (infra/bin/app.ts adds the
 * same pack as a policy-validation plugin, so a finding also fails synthesis). Every finding is
 * either fixed or acknowledged on the construct it concerns, with a specific reason.
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { BrokerStack } from '../../infra/broker-stack';
import { TEST_CERTIFICATE_ARN } from './stack-fixture';

function nag(context: Record<string, unknown>) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
  new BrokerStack(app, 'Nag');
  return { app, report: new AwsSolutionsChecks(app).validateScope(app) };
}

/** Every acknowledgement in the tree, as `Validations.of(construct).acknowledge` records them. */
function acknowledgements(root: IConstruct): Array<{ id: string; reason: string; path: string }> {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>))
      .map(([id, reason]) => ({ id, reason, path: construct.node.path })),
  );
}

describe('cdk-nag AwsSolutions', () => {
  for (const [name, context] of [
    ["with no context: the stack's own certificate", {}],
    ['with a certificate ARN', { certificateArn: TEST_CERTIFICATE_ARN }],
    ['with broker settings (JWT secret from Secrets Manager, limits)', { certificateArn: TEST_CERTIFICATE_ARN, jwtSecretName: 'mqtt/jwt', jwtAudience: 'mqtt', maxPacketSize: '65536', maxConnections: '1000' }],
    ['with a DNS-validated certificate and plain MQTT', { domainName: 'mqtt.example.com', hostedZoneId: 'Z0123456789ABC', plainMqtt: 'true' }],
  ] as const) {
    it(`reports no unacknowledged finding ${name}`, () => {
      const { report } = nag(context);
      expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.resourceLogicalId).join(', ')}`)).toEqual([]);
      expect(report.success).toBe(true);
    });
  }

  it('every acknowledgement names one rule and says why in a sentence', () => {
    const acks = [...acknowledgements(nag({ certificateArn: TEST_CERTIFICATE_ARN }).app), ...acknowledgements(nag({}).app)].filter((ack) => ack.id.includes('AwsSolutions'));
    expect(acks.length).toBeGreaterThan(5);
    for (const ack of acks) {
      expect(ack.id, ack.path).toMatch(/^(Annotation::)?AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(ack.reason.split(' ').length, `${ack.id} at ${ack.path}`).toBeGreaterThanOrEqual(8);
    }
  });

  it('fails synthesis on a finding, registered as infra/bin/app.ts registers it', () => {
    const app = new App();
    // A bucket with none of the rules' settings: AwsSolutions-S1 (access logs) and S10 (TLS) fire.
    new Bucket(new Stack(app, 'Careless'), 'Bucket');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/server access logs/);
  });
});
