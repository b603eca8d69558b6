/**
 * The retry strategy of the broker's SDK clients (shared/util/backoff-retry.ts): exponential
 * backoff with full jitter, bounded in attempts and in total time; client errors never retried.
 * And API Gateway's @connections client with it: a LimitExceededException (429) or a 5xx is tried
 * again until it passes, a 410 GoneException is not, and what fails after the retries is logged.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTIONS_CALL_FAILED, CONNECTIONS_RETRY, ConnectionsApi } from '../../shared/gateway/connections-api';
import { backoffDelay, BackoffRetryStrategy, type BackoffPolicy, type FailedAttempt } from '../../shared/util/backoff-retry';

const policy: BackoffPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 500 };
const throttled: FailedAttempt = { errorType: 'THROTTLING' };

/** The waits a strategy chooses for one call until it gives up, the clock moved by each wait. */
async function waits(strategy: BackoffRetryStrategy, failure: FailedAttempt, clock: { now: number }): Promise<number[]> {
  const chosen: number[] = [];
  let token = await strategy.acquireInitialRetryToken();
  for (;;) {
    try {
      token = await strategy.refreshRetryTokenForRetry(token, failure);
    } catch {
      return chosen;
    }
    chosen.push(token.getRetryDelay());
    clock.now += token.getRetryDelay();
  }
}

describe('backoff with full jitter', () => {
  it('waits a random time up to an exponential ceiling, capped', () => {
    expect([1, 2, 3, 4].map((retry) => backoffDelay(policy, retry, () => 0.999999))).toEqual([199.9998, 399.9996, 499.9995, 499.9995]);
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
    expect(backoffDelay(policy, 2, () => 0.5)).toBe(200);
  });

  it('retries throttling, transient and server errors until maxAttempts, never a client error', async () => {
    const clock = { now: 0 };
    const strategy = new BackoffRetryStrategy(policy, () => 0.5, () => clock.now);
    expect(await waits(strategy, throttled, clock)).toEqual([100, 200, 250, 250]);
    expect(await waits(strategy, { errorType: 'TRANSIENT' }, clock)).toHaveLength(4);
    expect(await waits(strategy, { errorType: 'SERVER_ERROR' }, clock)).toHaveLength(4);
    expect(await waits(strategy, { errorType: 'CLIENT_ERROR' }, clock)).toEqual([]);
  });

  it('starts no wait that would end past maxTotalMs after the first attempt', async () => {
    const clock = { now: 0 };
    const strategy = new BackoffRetryStrategy({ ...policy, maxAttempts: 100, maxTotalMs: 1000 }, () => 1, () => clock.now);
    // 200 + 400 + 500 = 1100 > 1000: the third wait is not taken.
    expect(await waits(strategy, throttled, clock)).toEqual([200, 400]);
  });

  it("bounds @connections calls at a few seconds, the handler's wait included", () => {
    const worst = Array.from({ length: CONNECTIONS_RETRY.maxAttempts - 1 }, (_, i) => backoffDelay(CONNECTIONS_RETRY, i + 1, () => 1));
    expect(Math.min(CONNECTIONS_RETRY.maxTotalMs!, worst.reduce((a, b) => a + b))).toBeLessThanOrEqual(6000);
  });
});

describe("API Gateway's @connections client", () => {
  /** Answers with the statuses queued, then 200; counts the requests. */
  let answers: number[] = [];
  let requests = 0;
  const server = http.createServer((request, response) => {
    requests++;
    request.resume();
    const status = answers.shift() ?? 200;
    const errorType = status === 429 ? 'LimitExceededException' : status === 410 ? 'GoneException' : status >= 500 ? 'InternalServerErrorException' : undefined;
    response.writeHead(status, { 'content-type': 'application/json', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) }).end(errorType ? JSON.stringify({ message: errorType }) : undefined);
  });
  const logged: Array<{ message: string; fields?: Record<string, unknown> }> = [];
  const log = { info: () => undefined, error: () => undefined, warn: (message: string, fields?: Record<string, unknown>) => void logged.push({ message, ...(fields ? { fields } : {}) }) };
  let api: ConnectionsApi;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    api = new ConnectionsApi({
      apiGatewayEndpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/local`,
      clientConfig: { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } },
      retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
      log,
    });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    answers = [];
    requests = 0;
    logged.length = 0;
  });

  it('retries 429 LimitExceededException and 5xx until the message is delivered', async () => {
    answers = [429, 503, 429];
    expect(await api.send('abc=', Buffer.from([0xd0, 0x00]))).toBe('delivered');
    expect(requests).toBe(4);
    answers = [500, 429];
    expect(await api.sendMany([['abc=', Buffer.from([0xd0, 0x00])]])).toEqual(new Map([['abc=', 'delivered']]));
    expect(logged).toEqual([]);
  });

  it('takes 410 GoneException as gone at once', async () => {
    answers = [410];
    expect(await api.send('abc=', Buffer.from([0xd0, 0x00]))).toBe('gone');
    expect(requests).toBe(1);
    expect(logged).toEqual([]);
  });

  it('logs a delivery still throttled after its attempts, and leaves it out of the results', async () => {
    answers = [429, 429, 429, 429];
    expect(await api.sendMany([['abc=', Buffer.from([0xd0, 0x00])]])).toEqual(new Map());
    expect(requests).toBe(4);
    expect(logged).toEqual([
      { message: CONNECTIONS_CALL_FAILED, fields: expect.objectContaining({ operation: 'post', door: 'apigw', connections: 1, error: expect.stringContaining('LimitExceededException') }) },
    ]);
  });
});
