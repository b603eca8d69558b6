/**
 * The rules of a process (a Lambda container, the harness), loaded once at start. For each
 * message the broker routes, `route` evaluates every rule and hands the events of the rules that
 * fire to their targets, batched per rule: every event queued before the next turn of the event
 * loop (`setImmediate`: the PUBLISHes of one invocation's connections, handled together) goes in
 * one call, split at the target's limits. Entries a target refuses are tried again, only those,
 * with exponential backoff and full jitter, bounded in attempts and time; what still fails goes
 * to the rule's dead-letter destination (tried the same way). The promise `route` returns for
 * the message resolves once every target accepted it or it was dead-lettered, and rejects when
 * neither happened: the broker then acknowledges nothing (QoS 1/2) and the client sends again.
 */
import { backoffDelay, type BackoffPolicy } from '../util/backoff-retry';
import type { Logger } from '../util/logger';
import type { RepublishTarget, RuleConfig } from './rule-config';
import { CompiledRule, type RuleEvent, type RuleMessage } from './rule-match';
import type { EntryFailure, TargetEntry, TargetFactory, TargetSender } from './target-port';

export const defaultRuleRetry: BackoffPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 2000, maxTotalMs: 5000 };

export interface RuleEngineOptions {
  readonly rules: readonly RuleConfig[];
  readonly targets: TargetFactory;
  readonly log: Logger;
  readonly retry?: BackoffPolicy;
  /** What happened to the events: accepted by their target, dead-lettered, or lost (neither). */
  readonly count?: (what: 'delivered' | 'deadLettered' | 'failed', events: number) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
  /**
   * The deliveries of the invocation under way (the entry points keep one set per invocation in
   * an AsyncLocalStorage: functions/rules-config.ts); `settled` waits for those only. None: all.
   */
  readonly scope?: () => Set<Promise<unknown>> | undefined;
}

/** A republish rule's message, for the broker to route. */
export interface Republish {
  readonly rule: string;
  readonly target: RepublishTarget;
  readonly event: RuleEvent;
}

export interface RuleOutcome {
  readonly republish: readonly Republish[];
  /** Resolves when every target accepted the message or its dead-letter destination did; rejects with RuleDeliveryError otherwise. */
  readonly accepted: Promise<void>;
}

/** A message that neither a rule's target nor its dead-letter destination accepted. */
export class RuleDeliveryError extends Error {
  override readonly name = 'RuleDeliveryError';
}

interface Entry {
  readonly entry: TargetEntry;
  readonly size: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface Lane {
  readonly rule: CompiledRule;
  readonly sender: TargetSender;
  readonly deadLetter?: TargetSender;
  queued: Entry[];
  scheduled: boolean;
}

export class RuleEngine {
  private readonly lanes: Lane[];
  private readonly republishRules: Array<{ rule: CompiledRule; target: RepublishTarget }> = [];
  private readonly retry: BackoffPolicy;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(private readonly options: RuleEngineOptions) {
    this.retry = options.retry ?? defaultRuleRetry;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = options.now ?? Date.now;
    this.lanes = [];
    for (const config of options.rules) {
      const rule = new CompiledRule(config);
      const deadLetter = config.deadLetter && config.deadLetter.type !== 'republish' ? options.targets(config.deadLetter, config) : undefined;
      if (config.target.type === 'republish') this.republishRules.push({ rule, target: config.target });
      else this.lanes.push({ rule, sender: options.targets(config.target, config), ...(deadLetter ? { deadLetter } : {}), queued: [], scheduled: false });
    }
  }

  async route(message: RuleMessage): Promise<RuleOutcome> {
    const [fired, republish] = await Promise.all([
      Promise.all(this.lanes.map(async (lane) => ({ lane, event: await lane.rule.evaluate(message) }))),
      Promise.all(this.republishRules.map(async ({ rule, target }) => ({ rule: rule.name, target, event: await rule.evaluate(message) }))),
    ]);
    const accepted = Promise.all(fired.flatMap(({ lane, event }) => (event ? [this.enqueue(lane, { topic: event.topic, clientId: event.clientId, body: { ...event } })] : []))).then(
      () => undefined,
    );
    this.track(accepted);
    return { republish: republish.flatMap((r) => (r.event ? [{ rule: r.rule, target: r.target, event: r.event }] : [])), accepted };
  }

  /**
   * Waits for the deliveries under way of the current invocation (its scope), or for all outside
   * one: an entry point awaits it before its invocation ends, since a Lambda is frozen after.
   */
  async settled(): Promise<void> {
    const pending = this.options.scope?.() ?? this.inFlight;
    while (pending.size > 0) await Promise.allSettled([...pending]);
  }

  private track(promise: Promise<unknown>): void {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    const scope = this.options.scope?.();
    this.inFlight.add(settled);
    scope?.add(settled);
    void settled.then(() => {
      this.inFlight.delete(settled);
      scope?.delete(settled);
    });
  }

  private enqueue(lane: Lane, entry: TargetEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      lane.queued.push({ entry, size: Buffer.byteLength(JSON.stringify(entry.body)), resolve, reject });
      if (!lane.scheduled) {
        lane.scheduled = true;
        setImmediate(() => this.flush(lane));
      }
    });
  }

  private flush(lane: Lane): void {
    const queued = lane.queued;
    lane.queued = [];
    lane.scheduled = false;
    for (const batch of batches(queued, lane.sender)) void this.deliver(lane, batch);
  }

  private async deliver(lane: Lane, batch: readonly Entry[]): Promise<void> {
    const failed = await this.sendWithRetry(lane.sender, batch.map((e) => e.entry));
    this.settle(batch, failed, (entries) => this.options.count?.('delivered', entries));
    const rejected = batch.flatMap((entry, i) => (failed.has(i) ? [{ entry, error: failed.get(i)! }] : []));
    if (rejected.length === 0) return;
    const rule = lane.rule.name;
    if (!lane.deadLetter) {
      this.lose(rule, rejected.map((r) => r.entry), rejected[0]!.error, 'no dead-letter destination');
      return;
    }
    this.options.log.warn('rule target refused messages: dead-lettering them', { rule, messages: rejected.length, error: rejected[0]!.error });
    const letters: Entry[] = rejected.map(({ entry, error }) => {
      const body = { deadLetter: { rule, error }, message: entry.entry.body };
      return { ...entry, entry: { ...entry.entry, body }, size: Buffer.byteLength(JSON.stringify(body)) };
    });
    for (const letterBatch of batches(letters, lane.deadLetter)) {
      const lost = await this.sendWithRetry(lane.deadLetter, letterBatch.map((e) => e.entry));
      this.settle(letterBatch, lost, (entries) => this.options.count?.('deadLettered', entries));
      const left = letterBatch.filter((_, i) => lost.has(i));
      if (left.length > 0) this.lose(rule, left, lost.values().next().value!, 'the dead-letter destination refused them too');
    }
  }

  private settle(batch: readonly Entry[], failed: ReadonlyMap<number, string>, count: (entries: number) => void): void {
    let accepted = 0;
    batch.forEach((entry, i) => {
      if (failed.has(i)) return;
      accepted += 1;
      entry.resolve();
    });
    if (accepted > 0) count(accepted);
  }

  private lose(rule: string, entries: readonly Entry[], error: string, why: string): void {
    this.options.log.error('rule delivery failed', { rule, messages: entries.length, error, why });
    this.options.count?.('failed', entries.length);
    for (const entry of entries) entry.reject(new RuleDeliveryError(`rule ${rule}: ${error} (${why})`));
  }

  /** The indexes of the entries still refused after the retries, with the last reason for each. */
  private async sendWithRetry(sender: TargetSender, entries: readonly TargetEntry[]): Promise<Map<number, string>> {
    const started = this.now();
    let pending = entries.map((entry, index) => ({ entry, index }));
    const refused = new Map<number, string>();
    for (let attempt = 1; ; attempt++) {
      const failures = await sender.send(pending.map((p) => p.entry)).catch((error: unknown): EntryFailure[] =>
        pending.map((_, index) => ({ index, error: errorText(error), retryable: true })),
      );
      const byIndex = new Map(failures.map((failure) => [failure.index, failure]));
      const retry: typeof pending = [];
      pending.forEach((item, i) => {
        const failure = byIndex.get(i);
        if (!failure) return void refused.delete(item.index);
        refused.set(item.index, failure.error);
        if (failure.retryable) retry.push(item);
      });
      if (retry.length === 0 || attempt >= this.retry.maxAttempts) return refused;
      const delay = backoffDelay(this.retry, attempt, this.options.random);
      if (this.retry.maxTotalMs !== undefined && this.now() + delay - started > this.retry.maxTotalMs) return refused;
      await this.sleep(delay);
      pending = retry;
    }
  }
}

/** Entries cut into the target's calls: at most `maxEntries` and `maxBytes` each (an entry larger than that alone). */
function batches(entries: readonly Entry[], sender: TargetSender): Entry[][] {
  const out: Entry[][] = [];
  let current: Entry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length > 0 && (current.length >= sender.maxEntries || bytes + entry.size > sender.maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entry.size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
