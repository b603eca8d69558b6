/** Connection records in DynamoDB (the Connections table, see tables.ts): one item per network connection. */
import type { ConnectionChanges, ConnectionEndChanges, ConnectionRecord, ConnectionStore } from '../broker/ports';
import type { DynamoTable, Item } from './dynamo-table';
import { ownerOf } from './connection-owners';
import { toItemMessage, toWill } from './message-items';

export class DynamoConnectionStore implements ConnectionStore {
  constructor(
    private readonly table: DynamoTable,
    private readonly now: () => number,
  ) {}

  async getConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const item = await this.table.get({ connectionId });
    return item ? toConnection(item) : undefined;
  }

  /** Many records in one BatchGetItem (100 keys a call), strongly consistent; a connection without a record is absent from the map. */
  async getConnections(connectionIds: readonly string[]): Promise<Map<string, ConnectionRecord>> {
    const unique = [...new Set(connectionIds)];
    if (unique.length === 0) return new Map();
    if (unique.length === 1) {
      const only = await this.getConnection(unique[0]!);
      return new Map(only ? [[unique[0]!, only]] : []);
    }
    const items = await this.table.batchGet(unique.map((connectionId) => ({ connectionId })));
    return new Map(items.map((item) => [item.connectionId as string, toConnection(item)]));
  }

  async putConnection(connection: ConnectionRecord): Promise<void> {
    await this.table.put({ Item: connectionItem(connection) });
  }

  async updateConnection(connectionId: string, changes: ConnectionChanges): Promise<void> {
    if (!changes.topicAlias) return;
    await this.table.updateIf({
      Key: { connectionId },
      UpdateExpression: 'SET topicAliases.#a = :t',
      ConditionExpression: 'attribute_exists(connectionId)',
      ExpressionAttributeNames: { '#a': String(changes.topicAlias[0]) },
      ExpressionAttributeValues: { ':t': changes.topicAlias[1] },
    });
  }

  async claimConnectionEnd(connectionId: string, leaseMs: number, changes: ConnectionEndChanges = {}): Promise<ConnectionRecord | undefined> {
    const now = this.now();
    const claimed = await this.table.updateIf({
      Key: { connectionId },
      UpdateExpression: [
        'SET endingAt = :now',
        changes.sessionExpiryInterval !== undefined ? ', sessionExpiryInterval = :e' : '',
        changes.dropWill ? ' REMOVE will' : '',
      ].join(''),
      // One end at a time; one that has not finished within the lease died, and may be taken again.
      ConditionExpression: 'attribute_exists(connectionId) AND (attribute_not_exists(endingAt) OR endingAt < :stale)',
      ExpressionAttributeValues: {
        ':now': now,
        ':stale': now - leaseMs,
        ...(changes.sessionExpiryInterval !== undefined ? { ':e': changes.sessionExpiryInterval } : {}),
      },
      ReturnValues: 'ALL_NEW',
    });
    return claimed?.attributes ? toConnection(claimed.attributes) : undefined;
  }

  async deleteConnection(connectionId: string): Promise<void> {
    await this.table.delete({ Key: { connectionId }, ReturnValues: 'ALL_OLD' });
  }
}

/**
 * The connection's item, as putConnection writes it (also written by the session store, with a new
 * session); its owner puts it in the sweeper's index.
 */
export function connectionItem(connection: ConnectionRecord): Item {
  return { topicAliases: {}, ...connection, owner: ownerOf(connection.connectionId), ...(connection.will ? { will: toItemMessage(connection.will) } : {}) };
}

function toConnection(item: Item): ConnectionRecord {
  const { will, ...rest } = item;
  delete rest.owner;
  return { ...(rest as unknown as ConnectionRecord), ...(will ? { will: toWill(will as Item) } : {}) };
}
