/** A webhook: one POST of `{"messages": [...]}` per batch; any 2xx accepts it. */
import type { HttpTarget } from '../rules/rule-config';
import { allFailed, type EntryFailure, type TargetEntry, type TargetSender } from '../rules/target-port';

/** A request that gets no answer within this is failed (and retried). */
const REQUEST_TIMEOUT_MS = 5000;

export class HttpTargetSender implements TargetSender {
  readonly maxEntries = 100;
  readonly maxBytes = 1024 * 1024;

  constructor(private readonly target: HttpTarget) {}

  async send(entries: readonly TargetEntry[]): Promise<EntryFailure[]> {
    const response = await fetch(this.target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.target.headers },
      body: JSON.stringify({ messages: entries.map((e) => e.body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (response.ok) return [];
    // 429 and 5xx may pass; another 4xx says the request itself is wrong.
    const retryable = response.status === 429 || response.status >= 500;
    return allFailed(entries.length, `HTTP ${response.status}`, retryable);
  }
}
