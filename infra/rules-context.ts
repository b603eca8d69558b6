/**
 * The rules (docs/rules.md) as deploy-time configuration, from CDK context:
 *
 *   rulesFile   a JSON file of rules (`-c rulesFile=rules.json`)
 *   rules       the rules themselves, as a JSON string or (in cdk.json) an array
 *
 * Synthesis checks them with the broker's own reader (functions/rules-config.ts) plus what only
 * the cloud refuses (a `file` dead letter, a webhook that is not HTTPS), and that every AWS target
 * names something the stack can grant access to; a mistake stops it with one line. The checked
 * rules are written to a file that is bundled with each function that routes messages
 * (infra/constructs/broker-rules.ts): no size limit, where Lambda's environment holds 4 KB.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Node } from 'constructs';
import { checkCloudRules, readRulesFile } from '../functions/rules-config';
import { ConfigurationError } from '../functions/security-config';
import { parseRules, parseRulesText, RulesConfigError, type RuleConfig, type TargetConfig } from '../shared/rules/rule-config';
import { DeployContextError } from './deploy-context';

export interface RulesContext {
  readonly rules: readonly RuleConfig[];
  /** The checked rules as JSON, written at synthesis, to bundle with the functions. */
  readonly file: string;
}

const LAMBDA_FUNCTION = /^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?$/;
const KINESIS_STREAM = /^(arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream\/)?[A-Za-z0-9_.-]{1,128}$/;
const EVENT_BUS = /^(arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/)?[A-Za-z0-9/_.-]{1,256}$/;
const SQS_QUEUE = /^(arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?|https:\/\/sqs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/\d{12}\/[A-Za-z0-9_-]{1,80}(\.fifo)?)$/;

export function readRulesContext(node: Node): RulesContext | undefined {
  const rulesFile: unknown = node.tryGetContext('rulesFile');
  const inline: unknown = node.tryGetContext('rules');
  if (rulesFile !== undefined && inline !== undefined) throw new DeployContextError('context rulesFile and rules are both given: pass one');
  let rules: RuleConfig[];
  let source: string;
  try {
    if (rulesFile !== undefined) {
      if (typeof rulesFile !== 'string' || rulesFile === '') throw new DeployContextError(`context rulesFile must be a file name, got ${JSON.stringify(rulesFile)}`);
      source = `context rulesFile (${rulesFile})`;
      rules = readRulesFile(rulesFile);
    } else if (inline !== undefined) {
      source = 'context rules';
      rules = typeof inline === 'string' ? parseRulesText(inline, source) : parseRules(inline, source);
    } else {
      return undefined;
    }
    checkCloudRules(rules, source);
  } catch (error) {
    if (error instanceof ConfigurationError || error instanceof RulesConfigError) throw new DeployContextError(prefixed(error.message, rulesFile));
    throw error;
  }
  rules.forEach((rule, i) => {
    checkAwsTarget(rule.target, `${source}: rules[${i}].target`);
    if (rule.deadLetter) checkAwsTarget(rule.deadLetter, `${source}: rules[${i}].deadLetter`);
  });
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'broker-rules-')), 'rules.json');
  writeFileSync(file, JSON.stringify(rules));
  return { rules, file };
}

/** Each AWS target must name its resource in a form the stack turns into one ARN to grant. */
function checkAwsTarget(target: TargetConfig, at: string): void {
  const bad = (field: string, value: string, form: string) => new DeployContextError(`${at}.${field}: "${value}" is not ${form}`);
  switch (target.type) {
    case 'lambda':
      if (!LAMBDA_FUNCTION.test(target.function)) throw bad('function', target.function, "a Lambda function's name or ARN");
      return;
    case 'sqs':
      if (!SQS_QUEUE.test(target.queue)) throw bad('queue', target.queue, "an SQS queue's ARN or URL (https://sqs.<region>.amazonaws.com/<account>/<name>)");
      return;
    case 'kinesis':
      if (!KINESIS_STREAM.test(target.stream)) throw bad('stream', target.stream, "a Kinesis stream's name or ARN");
      return;
    case 'eventbridge':
      if (target.bus !== undefined && !EVENT_BUS.test(target.bus)) throw bad('bus', target.bus, "an event bus's name or ARN");
      return;
    default:
      return;
  }
}

/** Errors from readRulesFile name the file; say it came from the context key. */
function prefixed(message: string, rulesFile: unknown): string {
  if (rulesFile === undefined || message.startsWith('context ')) return message;
  return `context rulesFile: ${message}`;
}
