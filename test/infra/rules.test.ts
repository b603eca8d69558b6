/**
 * Rules as deploy-time configuration: each target's wiring and IAM (least privilege, only on the
 * functions that route messages), the rules bundled as a file, cdk-nag clean, and one-line
 * synthesis errors.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { BrokerStack } from '../../infra/broker-stack';
import { BUNDLED_RULES_FILE, rulesBundling } from '../../infra/constructs/broker-rules';
import { readRulesContext } from '../../infra/rules-context';
import { logicalId, synthBroker, TEST_CERTIFICATE_ARN } from './stack-fixture';

const RULES = [
  { name: 'fleet', filter: 'fleet/+/telemetry', select: ['speed'], target: { type: 'lambda', function: 'telemetry-consumer' }, deadLetter: { type: 'sqs', queue: 'arn:aws:sqs:eu-west-1:123456789012:rules-dlq' } },
  { name: 'queue', filter: 'orders/#', target: { type: 'sqs', queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders' } },
  { name: 'stream', filter: 'sensors/+/temp', target: { type: 'kinesis', stream: 'telemetry' } },
  { name: 'bus', filter: 'alarms/#', target: { type: 'eventbridge', bus: 'arn:aws:events:eu-west-1:123456789012:event-bus/fleet' } },
  { name: 'hook', filter: 'hooks/#', target: { type: 'http', url: 'https://example.com/hook' } },
  { name: 'copy', filter: 'raw/+', target: { type: 'republish', topic: 'copy/${topic(2)}' } },
];

const synthesized = synthBroker({ rules: JSON.stringify(RULES) });
const { template, stack } = synthesized;

/** The statements of the role of one function, every policy of it together. */
function statementsOf(fn: { role?: unknown; node: { defaultChild?: unknown } }): Array<{ Action: unknown; Resource: unknown }> {
  const roleId = synthesized.stack.getLogicalId((fn as { role: { node: { defaultChild: never } } }).role.node.defaultChild);
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
    (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId),
  );
  return policies.flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>);
}

function ruleStatements(fn: Parameters<typeof statementsOf>[0]) {
  const actions = ['lambda:InvokeFunction', 'sqs:SendMessage', 'kinesis:PutRecords', 'events:PutEvents'];
  return statementsOf(fn)
    .filter((s) => actions.includes(s.Action as string))
    .filter((s) => JSON.stringify(s.Resource) !== JSON.stringify({ 'Fn::GetAtt': [logicalId(synthesized, stack.fanout), 'Arn'] }));
}

const partitionArn = (service: string, resource: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:${service}:`, { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, resource]] });

describe('rules in the stack', () => {
  const routers = { packets: stack.handlers.packets, wsDefault: stack.handlers.wsDefault, wsDisconnect: stack.handlers.wsDisconnect, sweeper: stack.sweeper };

  it.each(Object.keys(routers))('the %s function gets the bundled rules file and each target, on its resource only', (name) => {
    const fn = routers[name as keyof typeof routers];
    const resource = template.findResources('AWS::Lambda::Function')[logicalId(synthesized, fn)]!;
    expect(resource.Properties.Environment.Variables.MQTT_RULES_FILE).toBe(BUNDLED_RULES_FILE);
    expect(ruleStatements(fn)).toEqual([
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: partitionArn('lambda', ':function:telemetry-consumer') },
      {
        Action: 'sqs:SendMessage',
        Effect: 'Allow',
        Resource: ['arn:aws:sqs:eu-west-1:123456789012:rules-dlq', { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':sqs:eu-west-1:123456789012:orders']] }],
      },
      { Action: 'kinesis:PutRecords', Effect: 'Allow', Resource: partitionArn('kinesis', ':stream/telemetry') },
      { Action: 'events:PutEvents', Effect: 'Allow', Resource: 'arn:aws:events:eu-west-1:123456789012:event-bus/fleet' },
    ]);
  });

  it('the functions that route no message (fan-out, $connect) get neither the rules nor their targets', () => {
    for (const fn of [stack.fanout, stack.handlers.wsConnect]) {
      const resource = template.findResources('AWS::Lambda::Function')[logicalId(synthesized, fn)]!;
      expect(resource.Properties.Environment.Variables.MQTT_RULES_FILE).toBeUndefined();
      expect(ruleStatements(fn)).toEqual([]);
    }
  });

  it('without rules, no function gets a rules file or a rule target', () => {
    const plain = synthBroker();
    for (const resource of Object.values(plain.template.findResources('AWS::Lambda::Function'))) {
      expect(resource.Properties.Environment?.Variables?.MQTT_RULES_FILE).toBeUndefined();
    }
    const actions = Object.values(plain.template.findResources('AWS::IAM::Policy')).flatMap((p) => (p.Properties.PolicyDocument.Statement as Array<{ Action: unknown }>).map((s) => s.Action));
    expect(actions.flat()).not.toContain('sqs:SendMessage');
  });

  it('bundles the checked rules as rules.json after esbuild', () => {
    const context = readRulesContext(new App({ context: { rules: RULES } }).node)!;
    const out = mkdtempSync(path.join(os.tmpdir(), 'bundle-'));
    for (const command of rulesBundling(context).afterBundling('.', out)) execFileSync('bash', ['-c', command]);
    expect(JSON.parse(readFileSync(path.join(out, 'rules.json'), 'utf8'))).toEqual(context.rules);
    expect(context.rules.map((r) => r.name)).toEqual(RULES.map((r) => r.name));
  });

  it('reports no cdk-nag finding', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], certificateArn: TEST_CERTIFICATE_ARN, rules: RULES } });
    new BrokerStack(app, 'NagRules');
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.resourceLogicalId).join(', ')}`)).toEqual([]);
  });
});

describe('rules context errors', () => {
  const read = (context: Record<string, unknown>) => () => readRulesContext(new App({ context }).node);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rules-context-'));

  it.each([
    [{ rules: '[{"filter": "a/#/b", "target": {"type": "lambda", "function": "f"}}]' }, `context rules: rules[0].filter: "a/#/b" is not a topic filter ('#' must be the whole last level)`],
    [{ rules: [{ filter: 'a', target: { type: 'pigeon' } }] }, 'context rules: rules[0].target.type: "pigeon" is not one of http, republish, lambda, sqs, kinesis, eventbridge, file'],
    [{ rules: [{ filter: 'a', target: { type: 'sqs' } }] }, 'context rules: rules[0].target.queue: missing'],
    [{ rules: [{ filter: 'a', target: { type: 'lambda', function: 'my function' } }] }, `context rules: rules[0].target.function: "my function" is not a Lambda function's name or ARN`],
    [{ rules: [{ filter: 'a', target: { type: 'http', url: 'http://example.com/h' } }] }, 'context rules: rules[0].target.url: "http://example.com/h" must be https:// in the cloud (the functions reach out on port 443 only)'],
    [{ rules: [{ filter: 'a', target: { type: 'kinesis', stream: 's' }, deadLetter: { type: 'file', path: 'x' } }] }, 'context rules: rules[0].deadLetter: "file" exists only in the local harness; in the cloud use an SQS queue'],
    [{ rules: '[', rulesFile: 'x.json' }, 'context rulesFile and rules are both given: pass one'],
  ])('%j: one line', (context, message) => {
    expect(read(context)).toThrow(message);
    try {
      read(context)();
    } catch (error) {
      expect((error as Error).message.split('\n')).toHaveLength(1);
    }
  });

  it('names the rules file it could not read or parse', () => {
    expect(read({ rulesFile: path.join(dir, 'missing.json') })).toThrow(`context rulesFile: rules file ${path.join(dir, 'missing.json')} cannot be read (ENOENT)`);
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '[{"filter": "a"}]');
    expect(read({ rulesFile: bad })).toThrow(`context rulesFile: ${bad}: rules[0].target: must be an object`);
  });

  it('the CLI stops synthesis with that one line', () => {
    const bad = path.join(dir, 'cli.json');
    writeFileSync(bad, JSON.stringify([{ filter: 'a', target: { type: 'sqs', queue: 'q' } }]));
    let stderr = '';
    try {
      execFileSync(process.execPath, ['--import', 'tsx', 'infra/bin/app.ts'], {
        env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ rulesFile: bad, certificateArn: TEST_CERTIFICATE_ARN, 'aws:cdk:bundling-stacks': [] }), CDK_OUTDIR: mkdtempSync(path.join(os.tmpdir(), 'cdk-out-')) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      stderr = String((error as { stderr: Buffer }).stderr);
    }
    expect(stderr.trim()).toBe(`context rulesFile: ${bad}: rules[0].target.queue: "q" is neither a queue URL nor an ARN`);
  });
});
