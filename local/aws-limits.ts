/**
 * AWS's quotas that decide whether the deployed broker holds up, enforced by the local harness so
 * it fails where AWS would throttle or refuse (local/dynamodb-limits.ts, local/lambda-limits.ts,
 * local/apigw-emulator.ts). Each constant names the AWS documentation page it comes from.
 *
 * `AWS_LIMITS_SCALE` (default 1) multiplies every throughput quota (per second), so a local load
 * of N per second meets the limits a cloud load of N / scale would: at 0.01, one partition key
 * takes 30 read and 10 write units a second. Sizes and counts are never scaled.
 */
import { ConfigurationError } from '../functions/security-config';
import { API_GATEWAY_FRAME_BYTES, API_GATEWAY_MESSAGE_BYTES } from '../shared/gateway/door-limits';

// DynamoDB. Per partition (key value), on provisioned and on-demand tables alike, and on each
// partition of a global secondary index:
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#default-limits-throughput
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html
export const DYNAMODB_PARTITION_READ_UNITS_PER_SECOND = 3000;
export const DYNAMODB_PARTITION_WRITE_UNITS_PER_SECOND = 1000;

// A read unit is one strongly consistent read of up to 4 KB (two eventually consistent ones); a
// write unit one write of up to 1 KB; a transaction's items cost twice that:
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling
export const DYNAMODB_READ_UNIT_BYTES = 4 * 1024;
export const DYNAMODB_WRITE_UNIT_BYTES = 1024;
export const DYNAMODB_TRANSACTION_UNIT_FACTOR = 2;

// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-items
export const DYNAMODB_ITEM_BYTES = 400 * 1024;

// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
export const DYNAMODB_TRANSACT_WRITE_ITEMS = 100;
export const DYNAMODB_TRANSACT_WRITE_BYTES = 4 * 1024 * 1024;

// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
export const DYNAMODB_BATCH_GET_KEYS = 100;
export const DYNAMODB_BATCH_GET_BYTES = 16 * 1024 * 1024;

// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html
export const DYNAMODB_BATCH_WRITE_ITEMS = 25;

// Lambda: a synchronous invocation's request and response payloads, 6 MB each
// (RequestEntityTooLargeException, HTTP 413), and the account's concurrent executions
// (TooManyRequestsException, HTTP 429):
// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
// https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors
export const LAMBDA_SYNC_PAYLOAD_BYTES = 6_291_456;
export const LAMBDA_ACCOUNT_CONCURRENCY = 1000;

// API Gateway: the account's request rate in a Region, which `@connections` calls share
// (LimitExceededException, HTTP 429), and the WebSocket frame and message sizes:
// https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html#apigateway-account-level-limits-table
// https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
export const API_GATEWAY_ACCOUNT_REQUESTS_PER_SECOND = 10_000;
export { API_GATEWAY_FRAME_BYTES, API_GATEWAY_MESSAGE_BYTES };

/** The quotas the harness enforces, throughput already multiplied by the scale. */
export interface AwsLimits {
  /** The factor the per-second quotas were multiplied by (AWS_LIMITS_SCALE). */
  readonly scale: number;
  readonly dynamoDb: { readonly readUnitsPerSecond: number; readonly writeUnitsPerSecond: number };
  readonly lambda: { readonly concurrency: number; readonly payloadBytes: number };
  readonly apiGateway: { readonly connectionsRequestsPerSecond: number };
}

export interface AwsLimitSettings {
  /** AWS_LIMITS_SCALE: multiplies every per-second quota (default 1). */
  readonly scale?: number;
  /** LAMBDA_CONCURRENCY: the account's concurrent executions (default 1,000). */
  readonly lambdaConcurrency?: number;
}

export function awsLimits(settings: AwsLimitSettings = {}): AwsLimits {
  const scale = settings.scale ?? 1;
  return {
    scale,
    dynamoDb: {
      readUnitsPerSecond: DYNAMODB_PARTITION_READ_UNITS_PER_SECOND * scale,
      writeUnitsPerSecond: DYNAMODB_PARTITION_WRITE_UNITS_PER_SECOND * scale,
    },
    lambda: { concurrency: settings.lambdaConcurrency ?? LAMBDA_ACCOUNT_CONCURRENCY, payloadBytes: LAMBDA_SYNC_PAYLOAD_BYTES },
    apiGateway: { connectionsRequestsPerSecond: API_GATEWAY_ACCOUNT_REQUESTS_PER_SECOND * scale },
  };
}

/** AWS_LIMITS_SCALE and LAMBDA_CONCURRENCY from the environment; an error names a bad value. */
export function awsLimitSettingsFromEnv(env: NodeJS.ProcessEnv): AwsLimitSettings {
  const scale = positive(env.AWS_LIMITS_SCALE, 'AWS_LIMITS_SCALE', false);
  const lambdaConcurrency = positive(env.LAMBDA_CONCURRENCY, 'LAMBDA_CONCURRENCY', true);
  return { ...(scale !== undefined ? { scale } : {}), ...(lambdaConcurrency !== undefined ? { lambdaConcurrency } : {}) };
}

function positive(raw: string | undefined, name: string, integer: boolean): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new ConfigurationError(`${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
  }
  return value;
}

const count = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 4 });

/** One line per service, for `npm start`. */
export function describeAwsLimits(limits: AwsLimits): string[] {
  const scaled = limits.scale === 1 ? '' : ` (AWS_LIMITS_SCALE=${limits.scale})`;
  return [
    `DynamoDB: ${count.format(limits.dynamoDb.readUnitsPerSecond)} RCU/s and ${count.format(limits.dynamoDb.writeUnitsPerSecond)} WCU/s per partition key${scaled}; items 400 KB, transactions 100 items / 4 MB, batches 100 gets / 25 writes`,
    `Lambda: ${count.format(limits.lambda.concurrency)} concurrent invocations, ${limits.lambda.payloadBytes.toLocaleString('en-US')}-byte request and response`,
    `API Gateway: ${count.format(limits.apiGateway.connectionsRequestsPerSecond)} @connections requests/s${scaled}; frames 32 KB, messages 128 KB`,
  ];
}
