/**
 * The rules an operator declares (docs/rules.md): a JSON array, read once at start (a file for
 * `npm start`, CDK context for the stack) and checked strictly here, so that a mistake is one
 * line at start or at synth, never a surprise per message.
 */
import jsonata from 'jsonata';
import { checkTopicFilter } from '../protocol/topic';

export type TargetConfig = HttpTarget | RepublishTarget | LambdaTarget | SqsTarget | KinesisTarget | EventBridgeTarget | FileTarget;
export type TargetType = TargetConfig['type'];

/** POST of `{"messages": [...]}` as JSON; any 2xx accepts the batch. */
export interface HttpTarget {
  readonly type: 'http';
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The message published again, on `topic` (a template: `${topic}`, `${topic(n)}`, `${clientId}`). */
export interface RepublishTarget {
  readonly type: 'republish';
  readonly topic: string;
  /** 0 or 1; default: the source message's, 2 taken as 1. */
  readonly qos?: 0 | 1;
}

/** An asynchronous Invoke (InvocationType Event) of `{"messages": [...]}`; `function`: a name or an ARN. */
export interface LambdaTarget {
  readonly type: 'lambda';
  readonly function: string;
}

/** SendMessageBatch, one SQS message per MQTT message; `queue`: the queue's URL or ARN. */
export interface SqsTarget {
  readonly type: 'sqs';
  readonly queue: string;
}

/** PutRecords, one record per message; `stream`: a name or an ARN; `partitionKey`: a template, `${topic}` by default. */
export interface KinesisTarget {
  readonly type: 'kinesis';
  readonly stream: string;
  readonly partitionKey?: string;
}

/** PutEvents, one event per message, the message as its detail. */
export interface EventBridgeTarget {
  readonly type: 'eventbridge';
  /** A bus name or ARN; `default` when absent. */
  readonly bus?: string;
  readonly source?: string;
  readonly detailType?: string;
}

/** A JSON line per message appended to a file: a dead-letter destination of the local harness only. */
export interface FileTarget {
  readonly type: 'file';
  readonly path: string;
}

export interface RuleConfig {
  /** How logs, counters and dead letters name the rule; `rule-<n>` (1-based) when absent. */
  readonly name: string;
  readonly filter: string;
  /** Dotted paths into a JSON payload; the target receives an object of just these. */
  readonly select?: readonly string[];
  /** A JSONata expression over the JSON payload; the rule fires when it is true. */
  readonly where?: string;
  readonly target: TargetConfig;
  /** Where a message goes when the target keeps refusing it. */
  readonly deadLetter?: TargetConfig;
}

/** A rules file that cannot be used; the message is one line naming the rule and the field. */
export class RulesConfigError extends Error {
  override readonly name = 'RulesConfigError';
}

const RULE_KEYS = ['name', 'filter', 'select', 'where', 'target', 'deadLetter'];
const TARGET_KEYS: Record<TargetType, readonly string[]> = {
  http: ['url', 'headers'],
  republish: ['topic', 'qos'],
  lambda: ['function'],
  sqs: ['queue'],
  kinesis: ['stream', 'partitionKey'],
  eventbridge: ['bus', 'source', 'detailType'],
  file: ['path'],
};
const TARGET_TYPES = Object.keys(TARGET_KEYS) as TargetType[];
/** A dead letter is kept, not routed again: republishing it is no destination. */
const DEAD_LETTER_TYPES: readonly TargetType[] = ['sqs', 'lambda', 'kinesis', 'eventbridge', 'http', 'file'];

/** Parses the text of a rules file; `source` names it in errors. */
export function parseRulesText(text: string, source: string): RuleConfig[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RulesConfigError(`${source}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return parseRules(value, source);
}

/** Checks a parsed rules array, field by field. */
export function parseRules(value: unknown, source: string): RuleConfig[] {
  if (!Array.isArray(value)) throw new RulesConfigError(`${source}: rules must be a JSON array of rules`);
  const rules = value.map((rule, i) => parseRule(rule, `${source}: rules[${i}]`, i));
  const names = new Set<string>();
  for (const rule of rules) {
    if (names.has(rule.name)) throw new RulesConfigError(`${source}: two rules are named "${rule.name}"`);
    names.add(rule.name);
  }
  return rules;
}

function parseRule(value: unknown, at: string, index: number): RuleConfig {
  const rule = object(value, at);
  unknownKeys(rule, RULE_KEYS, at);
  const name = rule.name === undefined ? `rule-${index + 1}` : nonEmptyString(rule.name, `${at}.name`);
  const filter = nonEmptyString(rule.filter, `${at}.filter`);
  const check = checkTopicFilter(filter);
  if (!check.ok) throw new RulesConfigError(`${at}.filter: "${filter}" is not a topic filter (${check.reason})`);
  const select = rule.select === undefined ? undefined : selectPaths(rule.select, `${at}.select`);
  const where = rule.where === undefined ? undefined : whereExpression(rule.where, `${at}.where`);
  const target = parseTarget(rule.target, `${at}.target`, TARGET_TYPES);
  const deadLetter = rule.deadLetter === undefined ? undefined : parseTarget(rule.deadLetter, `${at}.deadLetter`, DEAD_LETTER_TYPES);
  if (target.type === 'file') throw new RulesConfigError(`${at}.target: "file" is a dead-letter destination only`);
  if (target.type === 'republish' && republishesIntoItself(filter, target.topic)) {
    throw new RulesConfigError(`${at}.target.topic: "${target.topic}" can match the rule's own filter "${filter}" (a loop)`);
  }
  return { name, filter, ...(select ? { select } : {}), ...(where !== undefined ? { where } : {}), target, ...(deadLetter ? { deadLetter } : {}) };
}

function parseTarget(value: unknown, at: string, allowed: readonly TargetType[]): TargetConfig {
  const target = object(value, at);
  const type = target.type;
  if (typeof type !== 'string' || !allowed.includes(type as TargetType)) {
    throw new RulesConfigError(`${at}.type: ${JSON.stringify(type)} is not one of ${allowed.join(', ')}`);
  }
  unknownKeys(target, ['type', ...TARGET_KEYS[type as TargetType]], at);
  switch (type as TargetType) {
    case 'http': {
      const url = nonEmptyString(target.url, `${at}.url`);
      if (!/^https?:\/\//.test(url) || !URL.canParse(url)) throw new RulesConfigError(`${at}.url: "${url}" is not an http(s) URL`);
      const headers = target.headers === undefined ? undefined : stringMap(target.headers, `${at}.headers`);
      return { type: 'http', url, ...(headers ? { headers } : {}) };
    }
    case 'republish': {
      const topic = nonEmptyString(target.topic, `${at}.topic`);
      if (/[+#]/.test(topic)) throw new RulesConfigError(`${at}.topic: "${topic}" contains a wildcard`);
      const unknown = [...topic.matchAll(/\$\{([^}]*)\}/g)].find(([, field]) => !/^(topic|topic\(\d+\)|clientId)$/.test(field!));
      if (unknown) throw new RulesConfigError(`${at}.topic: \${${unknown[1]}} is not \${topic}, \${topic(n)} or \${clientId}`);
      if (target.qos !== undefined && target.qos !== 0 && target.qos !== 1) throw new RulesConfigError(`${at}.qos: must be 0 or 1`);
      return { type: 'republish', topic, ...(target.qos !== undefined ? { qos: target.qos } : {}) };
    }
    case 'lambda':
      return { type: 'lambda', function: nonEmptyString(target.function, `${at}.function`) };
    case 'sqs': {
      const queue = nonEmptyString(target.queue, `${at}.queue`);
      if (!/^(https:\/\/|arn:)/.test(queue)) throw new RulesConfigError(`${at}.queue: "${queue}" is neither a queue URL nor an ARN`);
      return { type: 'sqs', queue };
    }
    case 'kinesis': {
      const partitionKey = target.partitionKey === undefined ? undefined : nonEmptyString(target.partitionKey, `${at}.partitionKey`);
      return { type: 'kinesis', stream: nonEmptyString(target.stream, `${at}.stream`), ...(partitionKey ? { partitionKey } : {}) };
    }
    case 'eventbridge': {
      const bus = target.bus === undefined ? undefined : nonEmptyString(target.bus, `${at}.bus`);
      const source = target.source === undefined ? undefined : nonEmptyString(target.source, `${at}.source`);
      const detailType = target.detailType === undefined ? undefined : nonEmptyString(target.detailType, `${at}.detailType`);
      return { type: 'eventbridge', ...(bus ? { bus } : {}), ...(source ? { source } : {}), ...(detailType ? { detailType } : {}) };
    }
    case 'file':
      return { type: 'file', path: nonEmptyString(target.path, `${at}.path`) };
  }
}

function selectPaths(value: unknown, at: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new RulesConfigError(`${at}: must be a non-empty array of field paths such as "device.id"`);
  return value.map((path, i) => {
    if (typeof path !== 'string' || path.split('.').some((part) => part.length === 0)) {
      throw new RulesConfigError(`${at}[${i}]: ${JSON.stringify(path)} is not a field path such as "device.id"`);
    }
    return path;
  });
}

function whereExpression(value: unknown, at: string): string {
  const expression = nonEmptyString(value, at);
  try {
    jsonata(expression);
  } catch (error) {
    const reason = error instanceof Error ? error.message : (error as { message?: string }).message;
    throw new RulesConfigError(`${at}: "${expression}" is not a JSONata expression (${reason ?? String(error)})`);
  }
  return expression;
}

/**
 * Could a topic this template makes match the filter? A level holding `${topic(n)}` may become any
 * one level; `${topic}` and `${clientId}` may become several (a client id may hold a `/`), so from
 * such a level on anything may follow.
 */
export function republishesIntoItself(filter: string, template: string): boolean {
  const f = filter.split('/');
  const t = template.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (/\$\{(topic|clientId)\}/.test(t[i]!)) return true;
    if (f[i] !== '+' && !t[i]!.includes('${') && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function object(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RulesConfigError(`${at}: must be an object`);
  return value as Record<string, unknown>;
}

function unknownKeys(value: Record<string, unknown>, known: readonly string[], at: string): void {
  const extra = Object.keys(value).find((key) => !known.includes(key));
  if (extra !== undefined) throw new RulesConfigError(`${at}: unknown field "${extra}" (known: ${known.join(', ')})`);
}

function nonEmptyString(value: unknown, at: string): string {
  if (value === undefined) throw new RulesConfigError(`${at}: missing`);
  if (typeof value !== 'string' || value.length === 0) throw new RulesConfigError(`${at}: must be a non-empty string`);
  return value;
}

function stringMap(value: unknown, at: string): Record<string, string> {
  const map = object(value, at);
  for (const [key, entry] of Object.entries(map)) if (typeof entry !== 'string') throw new RulesConfigError(`${at}.${key}: must be a string`);
  return map as Record<string, string>;
}
