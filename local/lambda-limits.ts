/**
 * Lambda's limits around the handlers the harness invokes in-process (local/aws-limits.ts): every
 * invocation crosses as JSON, as Lambda carries it; a request over 6 MB is refused with
 * RequestEntityTooLargeException (413) and a response over 6 MB fails as Lambda fails it
 * (Function.ResponseSizeTooLarge); over the account's concurrency, an invocation is refused with
 * TooManyRequestsException (429), as the Lambda client and API Gateway's integration would see it.
 */
import { LambdaServiceException, TooManyRequestsException } from '@aws-sdk/client-lambda';
import type { AwsLimits } from './aws-limits';
import type { LimitMeter } from './meters';

export class LambdaLimits {
  private inFlight = 0;

  constructor(
    private readonly limits: AwsLimits['lambda'],
    private readonly meter: LimitMeter,
  ) {}

  /** The handler as a synchronous Invoke reaches it: serialized, limited, the answer serialized back. */
  wrap<E, R>(handler: (event: E) => Promise<R>): (event: E) => Promise<R> {
    return async (event) => {
      // A scheduled invocation's event is its own; the harness passes none.
      const request = event === undefined ? undefined : JSON.stringify(event);
      if (request !== undefined && Buffer.byteLength(request) > this.limits.payloadBytes) {
        this.meter.count('lambda.payloadTooLarge');
        throw requestTooLarge(this.limits.payloadBytes);
      }
      if (this.inFlight >= this.limits.concurrency) {
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
