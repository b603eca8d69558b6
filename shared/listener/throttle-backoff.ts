/**
 * One connection's backoff while Lambda throttles its invocations (TooManyRequestsException, HTTP
 * 429, still refused after the Lambda client's own retries): each wait is 100 ms plus a random part
 * of a ceiling doubling from 200 ms to 5 s (jitter, so a task's throttled connections do not come
 * back together), for at most a minute of throttling in a row; then the connection is given up.
 */
const FIRST_WAIT_MS = 200;
const MAX_WAIT_MS = 5_000;
const GIVE_UP_MS = 60_000;

export class ThrottleBackoff {
  /** Since when, and how often, the invocations have been throttled in a row. */
  private since: { readonly at: number; retries: number } | undefined;

  /** The wait before offering the packets again after `error`; undefined when it is no throttle, or the minute has passed. */
  next(error: unknown, now = Date.now()): number | undefined {
    if (!isThrottling(error)) return undefined;
    this.since ??= { at: now, retries: 0 };
    if (now - this.since.at >= GIVE_UP_MS) return undefined;
    const ceiling = Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** this.since.retries++);
    return FIRST_WAIT_MS / 2 + Math.random() * ceiling;
  }

  /** Whether the last `next` began a run of throttling (worth one log line). */
  get first(): boolean {
    return this.since?.retries === 1;
  }

  /** An invocation went through: the next throttle starts afresh. */
  reset(): void {
    this.since = undefined;
  }
}

/** Lambda refused to run the invocation: over the account's or the function's concurrency. */
function isThrottling(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, $metadata } = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return name === 'TooManyRequestsException' || $metadata?.httpStatusCode === 429;
}
