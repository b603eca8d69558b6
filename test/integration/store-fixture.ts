/**
 * The DynamoDB store (createDynamoStore) on its own freshly created tables in the shared DynamoDB Local, built the way
 * functions/runtime.ts builds it, plus what the integration tests need to look behind it.
 */
import { randomBytes } from 'node:crypto';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, inject } from 'vitest';
import { localCredentials, LOCAL_REGION } from '../../local/local-aws';
import type { Subscription } from '../../shared/broker/ports';
import { createTables } from '../../shared/store/create-tables';
import { createDynamoStore, type DynamoStore } from '../../shared/store/create-dynamo-store';
import { SHAPE_COPIES } from '../../shared/store/subscription-index';
import { localTableNames, type TableNames } from '../../shared/store/tables';

export interface StoreFixture {
  readonly store: DynamoStore;
  readonly tables: TableNames;
  /** The document client the store uses, for the adapters built apart (inbox, security). */
  readonly documentClient: DynamoDBDocumentClient;
  /** Another store on the same tables whose clock is `now` (to simulate time passing). */
  storeAt(now: () => number): DynamoStore;
  /**
   * What the routing index counts for filters starting with `prefix`, sorted (a test-only Scan):
   * `m|<filter>=<refs>` per marker, and `<group> <shape>=<count>` per shape counted above zero in
   * the group's items, the count of every copy (`=[2,1,…]` when the copies disagree).
   */
  indexEntries(prefix?: string): Promise<string[]>;
  dispose(): Promise<void>;
}

/** A fixture for one test file: created as the file loads, disposed after its tests. */
export async function storeFixtureForFile(): Promise<StoreFixture> {
  const fixture = await createStoreFixture();
  afterAll(() => fixture.dispose());
  return fixture;
}

export async function createStoreFixture(): Promise<StoreFixture> {
  const client = new DynamoDBClient({ endpoint: inject('dynamoDbEndpoint'), region: LOCAL_REGION, credentials: localCredentials });
  const tables = localTableNames('it-' + randomBytes(4).toString('hex'));
  await createTables(client, tables);
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false } });
  return {
    store: createDynamoStore({ client: doc, tables }),
    tables,
    documentClient: doc,
    storeAt: (now) => createDynamoStore({ client: doc, tables, now }),
    indexEntries: async (prefix = '') => {
      const items: Record<string, unknown>[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const out = await doc.send(new ScanCommand({ TableName: tables.subscriptions, ConsistentRead: true, ExclusiveStartKey: start }));
        items.push(...(out.Items ?? []));
        start = out.LastEvaluatedKey;
      } while (start);
      const entries: string[] = [];
      const shapes = new Map<string, number[]>();
      for (const item of items) {
        const pk = item.pk as string;
        if (pk.startsWith('m|' + prefix)) entries.push(`${pk}=${String(item.refs)}`);
        const shapeItem = /^shape\|(\d+)\|(.*)$/.exec(pk);
        if (!shapeItem || !(shapeItem[2] === '*' ? '' : shapeItem[2]!.slice(1)).startsWith(prefix)) continue;
        for (const [name, count] of Object.entries(item)) {
          if (name === 'pk' || name === 'sk' || Number(count) <= 0) continue;
          const key = `${shapeItem[2]} ${name.slice(1)}`;
          shapes.set(key, [...(shapes.get(key) ?? []), Number(count)]);
        }
      }
      for (const [key, counts] of shapes) {
        const same = counts.length === SHAPE_COPIES && counts.every((count) => count === counts[0]);
        entries.push(same ? `${key}=${counts[0]}` : `${key}=[${counts.join(',')}]`);
      }
      return entries.sort();
    },
    dispose: async () => {
      await Promise.all(Object.values(tables).map((TableName) => client.send(new DeleteTableCommand({ TableName }))));
      client.destroy();
    },
  };
}

/** A client id no other test uses. */
export function uniqueClientId(name: string): string {
  return `${name}-${randomBytes(4).toString('hex')}`;
}

/** Subscriptions as sortable `client filter` strings, so a test can compare sets. */
export function described(subscriptions: readonly Subscription[]): string[] {
  return subscriptions.map((s) => `${s.clientId} ${s.filter}`).sort();
}

/** Store calls and read units consumed by one operation. */
export async function readCost(store: DynamoStore, operation: () => Promise<unknown>): Promise<{ calls: number; readUnits: number }> {
  const before = store.meter.snapshot();
  await operation();
  const after = store.meter.snapshot();
  return { calls: after.calls - before.calls, readUnits: after.readUnits - before.readUnits };
}

/** Runs the tasks with at most `width` in flight, so DynamoDB Local is not flooded. */
export async function inChunks<T>(items: readonly T[], width: number, task: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += width) {
    await Promise.all(items.slice(i, i + width).map(task));
  }
}
