/**
 * Lambda's limits around the handlers the harness invokes in-process (local/aws-limits.ts): every
 * invocation crosses as JSON, as Lambda carries it; a request over 6 MB is refused with
 * RequestEntityTooLargeException (413) and a response over 6 MB fails as Lambda fails it
 * (Function.ResponseSizeTooLarge); over the account's concurrency, an invocation is refused with
 * TooManyRequestsException (429). What the cloud invokes through the Lambda client (the
 * listener's packet handler, the fan-out workers: `new LambdaClient({})`, the SDK's standard
 * retry) is retried as that client retries a throttle; API Gateway's routes and the schedule are
 * not retried here.
 */
import { LambdaServiceException, TooManyRequestsException } from '@aws-sdk/client-lambda';
import type { AwsLimits } from './aws-limits';
import type { LimitMeter } from './meters';

export class LambdaLimits {
  private inFlight = 0;
  private concurrency: number;

  constructor(
    private readonly limits: AwsLimits['lambda'],
    private readonly meter: LimitMeter,
  ) {
    this.concurrency = limits.concurrency;
  }

  /** The account's concurrency from now on, as when an operator has the quota raised (tests). */
  setConcurrency(concurrency: number): void {
    this.concurrency = concurrency;
  }

  /** The handler as a synchronous Invoke reaches it: serialized, limited, the answer serialized back. */
  wrap<E, R>(handler: (event: E) => Promise<R>): (event: E) => Promise<R> {
    return async (event) => {
      // A scheduled invocation's event is its own; the harness passes none.
      const request = event === undefined ? undefined : JSON.stringify(event);
      if (request !== undefined && Buffer.byteLength(request) > this.limits.payloadBytes) {
        this.meter.count('lambda.payloadTooLarge');
        throw requestTooLarge(this.limits.payloadBytes);
      }
      if (this.inFlight >= this.concurrency) {
        this.meter.count('lambda.throttled');
        throw tooManyRequests();
      }
      this.inFlight++;
      let result: R;
      try {
        result = await handler(request === undefined ? event : (JSON.parse(request) as E));
      } finally {
        this.inFlight--;
      }
      if (result === undefined) return result;
      const response = JSON.stringify(result);
      if (Buffer.byteLength(response) > this.limits.payloadBytes) {
        this.meter.count('lambda.payloadTooLarge');
        throw responseTooLarge(Buffer.byteLength(response), this.limits.payloadBytes);
      }
      return JSON.parse(response) as R;
    };
  }
}

/** The SDK's standard retry mode: 3 attempts, a throttle waiting a random part of 500 ms x 2^retry. */
const SDK_MAX_ATTEMPTS = 3;
const SDK_THROTTLING_DELAY_MS = 500;

/** `invoke` as a LambdaClient with default settings sends it: a TooManyRequestsException is retried with backoff. */
export function withSdkRetry<E, R>(invoke: (event: E) => Promise<R>): (event: E) => Promise<R> {
  return async (event) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await invoke(event);
      } catch (error) {
        if (!(error instanceof TooManyRequestsException) || attempt >= SDK_MAX_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * SDK_THROTTLING_DELAY_MS * 2 ** attempt));
      }
    }
  };
}

function requestTooLarge(limit: number): LambdaServiceException {
  return new LambdaServiceException({
    name: 'RequestEntityTooLargeException',
    $fault: 'client',
    $metadata: { httpStatusCode: 413 },
    message: `Request must be smaller than ${limit} bytes for the InvokeFunction operation`,
  });
}

function tooManyRequests(): TooManyRequestsException {
  return new TooManyRequestsException({
    $metadata: { httpStatusCode: 429 },
    message: 'Rate Exceeded.',
    Reason: 'ConcurrentInvocationLimitExceeded',
  });
}

/** What a synchronous Invoke returns when the function's answer is too large: a function error. */
function responseTooLarge(size: number, limit: number): Error {
  const error = new Error(`Response payload size (${size} bytes) exceeded maximum allowed payload size (${limit} bytes).`);
  error.name = 'Function.ResponseSizeTooLarge';
  return error;
}
