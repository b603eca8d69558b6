/**
 * The DynamoDB adapter's error translation, against a fake DynamoDB endpoint that answers what a
 * real one answers when it throttles or fails: after the SDK's retries, the broker sees a
 * StoreUnavailableError of the right kind; a ConditionalCheckFailedException passes through.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConditionalCheckFailedException, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../shared/broker/ports';
import { dynamoDbClientConfig, translateStoreErrors } from '../../shared/store/store-errors';
import { localCredentials, LOCAL_REGION } from '../../local/local-aws';

let answer: { status: number; type: string } = { status: 400, type: 'ProvisionedThroughputExceededException' };
let requests = 0;
const server = http.createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    requests++;
    response.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0' });
    response.end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${answer.type}`, message: 'fake' }));
  });
});
let client: DynamoDBClient;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = translateStoreErrors(
    new DynamoDBClient(
      dynamoDbClientConfig({ endpoint, region: LOCAL_REGION, credentials: localCredentials }, { maxAttempts: 3, connectionTimeoutMs: 500, requestTimeoutMs: 1000 }),
    ),
  );
});

afterAll(async () => {
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function failure(status: number, type: string): Promise<unknown> {
  answer = { status, type };
  requests = 0;
  return client.send(new GetItemCommand({ TableName: 't', Key: { k: { S: 'v' } } })).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('store error translation', () => {
  it('throttling, retried 3 times, becomes StoreUnavailableError busy', async () => {
    const error = await failure(400, 'ProvisionedThroughputExceededException');
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).kind).toBe('busy');
    expect(requests).toBe(3);
  });

  it('an internal server error, retried 3 times, becomes StoreUnavailableError unavailable', async () => {
    const error = await failure(500, 'InternalServerError');
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).kind).toBe('unavailable');
    expect(requests).toBe(3);
  });

  it('a burst of failing calls: every call is still retried (no client-wide retry quota runs out)', async () => {
    answer = { status: 500, type: 'InternalServerError' };
    requests = 0;
    // The SDK's standard strategy would allow this client 100 retries of server errors in all (500 tokens, 5 each).
    const errors = await Promise.all(
      Array.from({ length: 80 }, () =>
        client.send(new GetItemCommand({ TableName: 't', Key: { k: { S: 'v' } } })).then(
          () => undefined,
          (error: unknown) => error,
        ),
      ),
    );
    expect(errors.every((error) => error instanceof StoreUnavailableError)).toBe(true);
    expect(requests).toBe(80 * 3);
  });

  it('a failed condition is not retried and stays the SDK error the adapter handles', async () => {
    const error = await failure(400, 'ConditionalCheckFailedException');
    expect(error).toBeInstanceOf(ConditionalCheckFailedException);
    expect(requests).toBe(1);
  });
});
