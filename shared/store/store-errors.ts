/**
 * How the DynamoDB client retries, and what the broker hears when it gives up. The client retries
 * throttling, transient errors and timeouts itself (BackoffRetryStrategy, shared/util: a bounded
 * number of attempts, exponential backoff with full jitter, and no retry quota shared by the
 * client's calls, so a burst of timeouts does not leave the calls after it without retries);
 * connection and request timeouts make a dead DynamoDB fail fast instead of hanging a handler
 * until its Lambda times out. What still fails after the retries is translated here, by class,
 * into the broker's StoreUnavailableError; everything else (a ConditionalCheckFailedException, a
 * validation error) passes through unchanged.
 */
import {
  DynamoDBServiceException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ThrottlingException,
  type DynamoDBClient,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import { StoreUnavailableError } from '../broker/ports';
import { BackoffRetryStrategy } from '../util/backoff-retry';

export interface StoreRetryOptions {
  /** Attempts per call, the first included. */
  readonly maxAttempts: number;
  /** How long to wait for a TCP connection to DynamoDB (ms). */
  readonly connectionTimeoutMs: number;
  /** How long to wait for an answer once connected (ms). */
  readonly requestTimeoutMs: number;
  /**
   * Sockets the client keeps open to DynamoDB (kept alive and reused). A burst of calls beyond it
   * waits for a socket instead of opening more connections than DynamoDB accepts at once.
   */
  readonly maxSockets?: number;
}

/** The SDK's own default pool size, kept, but set on purpose. */
const DEFAULT_MAX_SOCKETS = 50;

/**
 * The cloud's settings: a DynamoDB call normally answers in milliseconds, so three attempts with
 * a 1 s connect and 3 s request timeout bound a failing call at a few seconds, well inside the
 * handlers' Lambda timeout, and a client's CONNECT is refused while it still waits for CONNACK.
 */
export const defaultStoreRetry: StoreRetryOptions = { maxAttempts: 3, connectionTimeoutMs: 1000, requestTimeoutMs: 3000, maxSockets: DEFAULT_MAX_SOCKETS };

/** The DynamoDB client configuration that sets the retry strategy, timeouts and socket pool on purpose. */
export function dynamoDbClientConfig(base: DynamoDBClientConfig, retry: StoreRetryOptions = defaultStoreRetry): DynamoDBClientConfig {
  return {
    ...base,
    maxAttempts: retry.maxAttempts,
    retryStrategy: new BackoffRetryStrategy({ maxAttempts: retry.maxAttempts, baseDelayMs: 50, maxDelayMs: 2000 }),
    // Without throwOnRequestTimeout the handler only warns when the request timeout passes, and waits on.
    requestHandler: {
      connectionTimeout: retry.connectionTimeoutMs,
      requestTimeout: retry.requestTimeoutMs,
      throwOnRequestTimeout: true,
      httpAgent: { keepAlive: true, maxSockets: retry.maxSockets ?? DEFAULT_MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: retry.maxSockets ?? DEFAULT_MAX_SOCKETS },
    },
  };
}

/** Every call through `client` (and document clients built on it) fails with StoreUnavailableError when DynamoDB cannot serve it. */
export function translateStoreErrors(client: DynamoDBClient): DynamoDBClient {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await retryConflicts(() => next(args));
      } catch (error) {
        const kind = unavailability(error);
        if (kind) throw new StoreUnavailableError(kind, `DynamoDB ${kind}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        throw error;
      }
    },
    { step: 'initialize', name: 'translateStoreErrors', override: true },
  );
  return client;
}

/**
 * A single-item write that meets a transaction in progress on its item fails with
 * TransactionConflictException, which the SDK's strategy does not retry: the write is simply
 * tried again, a few times, after a short jittered wait.
 */
async function retryConflicts<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof Error) || error.name !== 'TransactionConflictException' || attempt >= CONFLICT_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * 2 ** attempt));
    }
  }
}

const CONFLICT_ATTEMPTS = 6;

/** Network-level failures: DynamoDB never answered. */
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

function unavailability(error: unknown): 'unavailable' | 'busy' | undefined {
  if (error instanceof ProvisionedThroughputExceededException || error instanceof RequestLimitExceeded || error instanceof ThrottlingException) return 'busy';
  if (error instanceof InternalServerError) return 'unavailable';
  if (error instanceof DynamoDBServiceException) return error.$fault === 'server' ? 'unavailable' : undefined;
  if (!(error instanceof Error)) return undefined;
  // The HTTP handler's own timeouts, and socket errors
  if (error.name === 'TimeoutError' || error.name === 'RequestTimeout') return 'unavailable';
  const code = (error as NodeJS.ErrnoException).code;
  return code !== undefined && NETWORK_ERROR_CODES.has(code) ? 'unavailable' : undefined;
}
