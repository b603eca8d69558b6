/** Creates the broker's tables from the shared definitions (the local harness; CDK does it in the cloud). */
import {
  CreateTableCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type AttributeDefinition,
  type DynamoDBClient,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import { brokerTables, type KeyAttribute, type TableDefinition, type TableNames } from './tables';

export async function createTables(client: DynamoDBClient, names: TableNames): Promise<void> {
  await Promise.all(brokerTables.map((table) => createTable(client, table, names[table.key])));
}

async function createTable(client: DynamoDBClient, table: TableDefinition, tableName: string): Promise<void> {
  const indexes = table.globalIndexes ?? [];
  const attributes = new Map<string, KeyAttribute>();
  for (const key of [table.partitionKey, table.sortKey, ...indexes.flatMap((index) => [index.partitionKey, index.sortKey])]) {
    if (key) attributes.set(key.name, key);
  }
  const AttributeDefinitions: AttributeDefinition[] = [...attributes.values()].map((key) => ({ AttributeName: key.name, AttributeType: key.type }));
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        KeySchema: keySchema(table.partitionKey, table.sortKey),
        AttributeDefinitions,
        BillingMode: 'PAY_PER_REQUEST',
        ...(indexes.length > 0
          ? {
              GlobalSecondaryIndexes: indexes.map((index) => ({
                IndexName: index.name,
                KeySchema: keySchema(index.partitionKey, index.sortKey),
                Projection: index.include ? { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.include] } : { ProjectionType: 'ALL' },
              })),
            }
          : {}),
      }),
    );
  } catch (error) {
    if (error instanceof ResourceInUseException) return; // already there: a harness restarted on the same DynamoDB
    throw error;
  }
  await waitUntilTableExists({ client, maxWaitTime: 60 }, { TableName: tableName });
  if (table.timeToLiveAttribute) {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: table.timeToLiveAttribute, Enabled: true },
      }),
    );
  }
}

function keySchema(partitionKey: KeyAttribute, sortKey?: KeyAttribute): KeySchemaElement[] {
  return [
    { AttributeName: partitionKey.name, KeyType: 'HASH' },
    ...(sortKey ? [{ AttributeName: sortKey.name, KeyType: 'RANGE' as const }] : []),
  ];
}
