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
import { brokerTables, type TableDefinition, type TableNames } from './tables';

export async function createTables(client: DynamoDBClient, names: TableNames): Promise<void> {
  await Promise.all(brokerTables.map((table) => createTable(client, table, names[table.key])));
}

async function createTable(client: DynamoDBClient, table: TableDefinition, tableName: string): Promise<void> {
  const keys = [table.partitionKey, ...(table.sortKey ? [table.sortKey] : [])];
  const KeySchema: KeySchemaElement[] = keys.map((key, i) => ({ AttributeName: key.name, KeyType: i === 0 ? 'HASH' : 'RANGE' }));
  const AttributeDefinitions: AttributeDefinition[] = keys.map((key) => ({ AttributeName: key.name, AttributeType: key.type }));
  try {
    await client.send(new CreateTableCommand({ TableName: tableName, KeySchema, AttributeDefinitions, BillingMode: 'PAY_PER_REQUEST' }));
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
