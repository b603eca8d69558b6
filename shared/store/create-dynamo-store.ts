/**
 * The broker's store in DynamoDB: one adapter per port, sharing one capacity meter (and one
 * sequence generator). Clients and table names come in here, once, from the entry point.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { BrokerStore } from '../broker/ports';
import { CapacityMeter } from './capacity-meter';
import { DynamoConnectionStore } from './dynamo-connections';
import { DynamoDeliveryStore } from './dynamo-deliveries';
import { DynamoReceiptStore } from './dynamo-receipts';
import { DynamoRetainedStore } from './dynamo-retained';
import { DynamoSessionStore } from './dynamo-sessions';
import { DynamoSubscriptionStore } from './dynamo-subscriptions';
import { DynamoTable } from './dynamo-table';
import { DynamoWillStore } from './dynamo-wills';
import { SequenceGenerator } from './session-items';
import type { StatsCounter } from '../broker/stats';
import type { TableNames } from './tables';

export interface DynamoStoreOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tables: TableNames;
  readonly meter?: CapacityMeter;
  readonly now?: () => number;
  /** Where the routes and retained topics made and removed are counted ($SYS). */
  readonly stats?: StatsCounter;
}

/** The seven store ports on DynamoDB, and the meter their calls are counted in. */
export interface DynamoStore extends BrokerStore {
  readonly meter: CapacityMeter;
}

export function createDynamoStore(options: DynamoStoreOptions): DynamoStore {
  const meter = options.meter ?? new CapacityMeter();
  const now = options.now ?? Date.now;
  const table = (name: string) => new DynamoTable(options.client, name, meter);
  const sessions = table(options.tables.sessions);
  const sequence = new SequenceGenerator(now);
  const subscriptions = new DynamoSubscriptionStore(sessions, table(options.tables.subscriptions), undefined, options.stats);
  const wills = new DynamoWillStore(sessions);
  const connections = table(options.tables.connections);
  return {
    meter,
    connections: new DynamoConnectionStore(connections, now),
    sessions: new DynamoSessionStore(sessions, { subscriptions, wills, connections, security: table(options.tables.security) }, now),
    subscriptions,
    deliveries: new DynamoDeliveryStore(sessions, sequence, now),
    receipts: new DynamoReceiptStore(sessions, sequence, now),
    retained: new DynamoRetainedStore(table(options.tables.retained), now, options.stats),
    wills,
  };
}
