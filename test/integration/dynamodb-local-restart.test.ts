/**
 * DynamoDB Local with `-dbPath` keeps its tables across a restart (the chaos suite restarts it
 * mid-round): an item written before the restart is read back after it, on the same endpoint.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynamoDbLocal, type RunningDynamoDb } from '../../local/dynamodb-local';
import { freePort } from '../../local/free-port';
import { localCredentials, LOCAL_REGION } from '../../local/local-aws';

let dbPath: string;
let dynamoDb: RunningDynamoDb;
let client: DynamoDBClient;

beforeAll(async () => {
  dbPath = await mkdtemp(path.join(os.tmpdir(), 'dynamodb-local-'));
  dynamoDb = await startDynamoDbLocal(await freePort(), '127.0.0.1', { dbPath });
  client = new DynamoDBClient({ endpoint: dynamoDb.endpoint, region: LOCAL_REGION, credentials: localCredentials });
});

afterAll(async () => {
  client?.destroy();
  await dynamoDb?.stop();
  await rm(dbPath, { recursive: true, force: true });
});

describe('DynamoDB Local with a dbPath', () => {
  it('serves the items written before a restart after it', async () => {
    await client.send(
      new CreateTableCommand({
        TableName: 'restart',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await client.send(new PutItemCommand({ TableName: 'restart', Item: { id: { S: 'kept' }, value: { N: '42' } } }));

    await dynamoDb.restart();

    const { Item } = await client.send(new GetItemCommand({ TableName: 'restart', Key: { id: { S: 'kept' } }, ConsistentRead: true }));
    expect(Item).toEqual({ id: { S: 'kept' }, value: { N: '42' } });
  }, 90_000);
});
