/**
 * Whether a rule fires for a message, and what its target receives. Pure but for JSONata's
 * evaluation, which is asynchronous; no I/O.
 */
import jsonata from 'jsonata';
import { checkTopicName, topicMatches } from '../protocol/topic';
import type { RepublishTarget, RuleConfig } from './rule-config';

/** An application message as the rules see it. */
export interface RuleMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  /** The publisher's client id (the will's owner for a will). */
  readonly clientId: string;
  readonly userProperties?: Readonly<Record<string, string | string[]>>;
  /** When the broker received it, epoch milliseconds. */
  readonly timestamp: number;
}

/** What a target receives for one message (docs/rules.md). */
export interface RuleEvent {
  readonly rule: string;
  readonly topic: string;
  /** The payload as text when it is valid UTF-8, else base64. */
  readonly payload: string;
  readonly encoding: 'utf8' | 'base64';
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly clientId: string;
  readonly userProperties?: Readonly<Record<string, string | string[]>>;
  readonly timestamp: number;
  /** With `select`: the selected fields of the JSON payload. */
  readonly selected?: Record<string, unknown>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class CompiledRule {
  private readonly where: jsonata.Expression | undefined;

  constructor(readonly config: RuleConfig) {
    this.where = config.where === undefined ? undefined : jsonata(config.where);
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * The event for `message` when the rule fires, else undefined. A rule with `select` or `where`
   * fires only for a JSON payload; a `where` that fails to evaluate (a type error) does not fire.
   */
  async evaluate(message: RuleMessage): Promise<RuleEvent | undefined> {
    if (!topicMatches(this.config.filter, message.topic)) return undefined;
    const text = decodeUtf8(message.payload);
    const base: RuleEvent = {
      rule: this.config.name,
      topic: message.topic,
      payload: text ?? message.payload.toString('base64'),
      encoding: text === undefined ? 'base64' : 'utf8',
      qos: message.qos,
      retain: message.retain,
      clientId: message.clientId,
      ...(message.userProperties && Object.keys(message.userProperties).length > 0 ? { userProperties: message.userProperties } : {}),
      timestamp: message.timestamp,
    };
    if (!this.config.select && !this.where) return base;
    const json = text === undefined ? undefined : parseJson(text);
    if (json === undefined) return undefined;
    if (this.where) {
      const bindings = { topic: message.topic, clientId: message.clientId, qos: message.qos };
      const verdict = await this.where.evaluate(json.value, bindings).catch(() => false);
      if (verdict !== true) return undefined;
    }
    return this.config.select ? { ...base, selected: selectFields(json.value, this.config.select) } : base;
  }
}

/** An object of the selected dotted paths' values, nested as in the payload; missing ones left out. */
export function selectFields(value: unknown, paths: readonly string[]): Record<string, unknown> {
  const selected: Record<string, unknown> = {};
  for (const path of paths) {
    const parts = path.split('.');
    let found: unknown = value;
    for (const part of parts) found = isRecord(found) && Object.hasOwn(found, part) ? found[part] : undefined;
    if (found === undefined) continue;
    let into = selected;
    for (const part of parts.slice(0, -1)) into = (isRecord(into[part]) ? into[part] : (into[part] = {})) as Record<string, unknown>;
    into[parts.at(-1)!] = found;
  }
  return selected;
}

/**
 * The topic a republish rule publishes an event to: `${topic}`, `${topic(n)}` (the n-th level,
 * from 1; empty beyond the last) and `${clientId}` replaced. Undefined when the result is not a
 * topic name (a client id holding a wildcard).
 */
export function republishTopic(target: RepublishTarget, event: Pick<RuleEvent, 'topic' | 'clientId'>): string | undefined {
  const topic = expandTemplate(target.topic, event);
  return checkTopicName(topic).ok ? topic : undefined;
}

/** A template over a message's topic and publisher (republish topics, Kinesis partition keys). */
export function expandTemplate(template: string, event: Pick<RuleEvent, 'topic' | 'clientId'>): string {
  const levels = event.topic.split('/');
  return template.replace(/\$\{(topic|topic\((\d+)\)|clientId)\}/g, (_whole, field: string, n: string | undefined) => {
    if (field === 'clientId') return event.clientId;
    if (n !== undefined) return levels[Number(n) - 1] ?? '';
    return event.topic;
  });
}

function decodeUtf8(payload: Buffer): string | undefined {
  try {
    return utf8.decode(payload);
  } catch {
    return undefined;
  }
}

function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
