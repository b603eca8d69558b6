/**
 * The retry strategy the broker gives its AWS SDK clients (the SDK's RetryStrategyV2 interface,
 * set as a client's `retryStrategy`): the SDK's retry middleware still classifies each failure
 * (THROTTLING: a 429 or a throttling error name such as LimitExceededException; TRANSIENT: 500,
 * 502-504, timeouts, socket errors; SERVER_ERROR: another 5xx; CLIENT_ERROR: the rest, 410 Gone
 * among them), and this strategy decides when to try again: every class but CLIENT_ERROR, after
 * an exponential backoff with full jitter (a random wait up to min(maxDelayMs, baseDelayMs x
 * 2^retry), so a burst's retries spread out instead of arriving together), within maxAttempts
 * and, when set, maxTotalMs from the first attempt (a wait that would end past it is not taken).
 *
 * What it leaves out of the SDK's standard strategy is the retry quota: a client-wide bucket of
 * 500 tokens (5 a throttled retry, 14 a transient one, in SDK 3.1169) that a burst of failures
 * empties, leaving every later call of that client (all of a Lambda container's) with no retry at
 * all, precisely while the service throttles or times out. Each call here is bounded on its own.
 */

export interface BackoffPolicy {
  /** Attempts per call, the first included. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  /** The largest wait between two attempts. */
  readonly maxDelayMs: number;
  /** No wait is started that would end later than this after the first attempt (no bound when absent). */
  readonly maxTotalMs?: number;
}

/** What the SDK's retry middleware tells a strategy about a failed attempt (its RetryErrorInfo). */
export interface FailedAttempt {
  readonly errorType: 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR';
}

/** The SDK's retry token: how many retries so far, how long to wait before the next, and when the call began. */
export class BackoffRetryToken {
  constructor(
    private readonly count: number,
    private readonly delay: number,
    readonly startedAt: number,
  ) {}

  getRetryCount(): number {
    return this.count;
  }

  getRetryDelay(): number {
    return this.delay;
  }
}

/** The wait before retry number `retry` (1 for the first): full jitter under an exponential ceiling. */
export function backoffDelay(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  return random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
}

export class BackoffRetryStrategy {
  readonly mode = 'standard';

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {}

  async acquireInitialRetryToken(): Promise<BackoffRetryToken> {
    return new BackoffRetryToken(0, 0, this.now());
  }

  async refreshRetryTokenForRetry(token: BackoffRetryToken, failed: FailedAttempt): Promise<BackoffRetryToken> {
    const retries = token.getRetryCount() + 1;
    if (failed.errorType === 'CLIENT_ERROR' || retries >= this.policy.maxAttempts) throw new Error('no retry left');
    const delay = backoffDelay(this.policy, retries, this.random);
    const { maxTotalMs } = this.policy;
    if (maxTotalMs !== undefined && this.now() + delay - token.startedAt > maxTotalMs) throw new Error('no time left to retry');
    return new BackoffRetryToken(retries, delay, token.startedAt);
  }

  recordSuccess(): void {}
}
