/**
 * The port a rule's target (or dead-letter destination) is reached through. The adapters
 * (shared/rule-targets/ for AWS and HTTP, local/ for the harness's own) implement it; the engine
 * (rule-engine.ts) batches, retries and dead-letters around it.
 */
import type { RuleConfig, TargetConfig } from './rule-config';

/** One entry of a batch: the JSON a target receives, and what its templates may use. */
export interface TargetEntry {
  readonly topic: string;
  readonly clientId: string;
  readonly body: Readonly<Record<string, unknown>>;
}

/** An entry the target did not accept; `retryable`: trying again may help (throttling, a 5xx). */
export interface EntryFailure {
  readonly index: number;
  readonly error: string;
  readonly retryable: boolean;
}

export interface TargetSender {
  /** Most entries one call carries (SQS and EventBridge 10, Kinesis 500). */
  readonly maxEntries: number;
  /** Most bytes of JSON bodies one call carries. */
  readonly maxBytes: number;
  /**
   * Sends a batch; resolves with the entries that failed (none: all accepted). A call that fails
   * as a whole may throw: every entry then failed, retryable.
   */
  send(entries: readonly TargetEntry[]): Promise<EntryFailure[]>;
}

/** Builds the sender of a target, once per rule at start. */
export type TargetFactory = (target: Exclude<TargetConfig, { type: 'republish' }>, rule: RuleConfig) => TargetSender;

/** Every entry of the batch failed the same way. */
export function allFailed(count: number, error: string, retryable: boolean): EntryFailure[] {
  return Array.from({ length: count }, (_, index) => ({ index, error, retryable }));
}
