/**
 * The broker's state in DynamoDB: the only module that talks to it. Clients and table names
 * come in through the constructor; every call reports its consumed capacity to the meter.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type {
  BrokerStore,
  ConnectionRecord,
  OpenSessionRequest,
  OpenSessionResult,
  OutgoingMessage,
  SessionRecord,
  Subscription,
} from '../broker/ports';
import { forEachBounded } from '../broker/concurrency';
import type { ProtocolVersion } from '../protocol/codec';
import { hasWildcard } from '../protocol/topic';
import { CapacityMeter } from './capacity-meter';
import {
  filterKey,
  filterPrefixes,
  FILTER_PREFIX,
  matchingWildcardFilters,
  nodeKey,
  NODE_PREFIX,
  NODE_SORT_KEY,
  type TrieNode,
} from './subscription-index';
import type { TableNames } from './tables';

const SESSION_SK = 'session';
const SUB_PREFIX = 'sub#';
const OUT_PREFIX = 'out#';
const IN_PREFIX = 'in#';
const NEVER_EXPIRES = 0xffffffff;
const BATCH_GET_LIMIT = 100;
const BATCH_WRITE_LIMIT = 25;
const CAPACITY = 'TOTAL' as const;
const PARALLEL_BATCHES = 8;

type Item = Record<string, unknown>;

export interface DynamoStoreOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tables: TableNames;
  readonly meter?: CapacityMeter;
  readonly now?: () => number;
}

export class DynamoBrokerStore implements BrokerStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly tables: TableNames;
  readonly meter: CapacityMeter;
  private readonly now: () => number;

  constructor(options: DynamoStoreOptions) {
    this.client = options.client;
    this.tables = options.tables;
    this.meter = options.meter ?? new CapacityMeter();
    this.now = options.now ?? Date.now;
  }

  // ---- connections ----

  async getConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tables.connections, Key: { connectionId }, ConsistentRead: true, ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('read', out.ConsumedCapacity);
    return out.Item ? toConnection(out.Item) : undefined;
  }

  async putConnection(connection: ConnectionRecord): Promise<void> {
    const out = await this.client.send(
      new PutCommand({ TableName: this.tables.connections, Item: { ...connection }, ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('write', out.ConsumedCapacity);
  }

  async deleteConnection(connectionId: string): Promise<void> {
    const out = await this.client.send(
      new DeleteCommand({ TableName: this.tables.connections, Key: { connectionId }, ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('write', out.ConsumedCapacity);
  }

  // ---- sessions ----

  async openSession(request: OpenSessionRequest): Promise<OpenSessionResult> {
    // Claim the session first: the old item tells who held it, even when it is about to be wiped.
    const out = await this.client.send(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId: request.clientId, sk: SESSION_SK },
        UpdateExpression:
          request.maximumPacketSize === undefined
            ? 'SET connectionId = :c, protocolVersion = :v, connectedAt = :t REMOVE expiresAt, maximumPacketSize'
            : 'SET connectionId = :c, protocolVersion = :v, connectedAt = :t, maximumPacketSize = :m REMOVE expiresAt',
        ExpressionAttributeValues: {
          ':c': request.connectionId,
          ':v': request.protocolVersion,
          ':t': this.now(),
          ...(request.maximumPacketSize === undefined ? {} : { ':m': request.maximumPacketSize }),
        },
        ReturnValues: 'ALL_OLD',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    const old = out.Attributes;
    const alive = old !== undefined && !isExpired(old, this.now());
    // Clean Start, or a session that expired but TTL has not deleted yet: nothing of it survives.
    if (request.cleanStart || (old !== undefined && !alive)) await this.deleteSessionState(request.clientId, { keepSessionItem: true });
    return {
      sessionPresent: !request.cleanStart && alive,
      ...(alive && typeof old.connectionId === 'string'
        ? { previousConnectionId: old.connectionId, previousProtocolVersion: old.protocolVersion as ProtocolVersion }
        : {}),
    };
  }

  async closeSession(clientId: string, connectionId: string, endSession: boolean, expiryInterval: number): Promise<void> {
    const expires = !endSession && expiryInterval !== NEVER_EXPIRES;
    try {
      // Only the connection that holds the session may detach it: after a takeover it is not ours.
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tables.sessions,
          Key: { clientId, sk: SESSION_SK },
          UpdateExpression: expires ? 'REMOVE connectionId SET expiresAt = :e' : 'REMOVE connectionId',
          ConditionExpression: 'connectionId = :c',
          ExpressionAttributeValues: {
            ':c': connectionId,
            ...(expires ? { ':e': Math.ceil(this.now() / 1000) + expiryInterval } : {}),
          },
          ReturnConsumedCapacity: CAPACITY,
        }),
      );
      this.meter.record('write', out.ConsumedCapacity);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return this.meter.recordFailedWrite();
      throw error;
    }
    if (endSession) await this.deleteSessionState(clientId);
  }

  async getSessions(clientIds: readonly string[]): Promise<Map<string, SessionRecord>> {
    const items = await this.batchGet(
      this.tables.sessions,
      [...new Set(clientIds)].map((clientId) => ({ clientId, sk: SESSION_SK })),
    );
    const now = this.now();
    const sessions = new Map<string, SessionRecord>();
    for (const item of items) {
      if (isExpired(item, now)) continue;
      sessions.set(item.clientId as string, {
        clientId: item.clientId as string,
        protocolVersion: item.protocolVersion as ProtocolVersion,
        ...(typeof item.connectionId === 'string' ? { connectionId: item.connectionId } : {}),
        ...(typeof item.maximumPacketSize === 'number' ? { maximumPacketSize: item.maximumPacketSize } : {}),
      });
    }
    return sessions;
  }

  /** Everything in the client's partition, and its entries in the routing index. */
  private async deleteSessionState(clientId: string, options: { keepSessionItem?: boolean } = {}): Promise<void> {
    const all = await this.queryAll({
      TableName: this.tables.sessions,
      KeyConditionExpression: 'clientId = :c',
      ExpressionAttributeValues: { ':c': clientId },
      ProjectionExpression: 'clientId, sk',
    });
    const items = options.keepSessionItem ? all.filter((item) => item.sk !== SESSION_SK) : all;
    const filters = items.map((item) => item.sk as string).filter((sk) => sk.startsWith(SUB_PREFIX)).map((sk) => sk.slice(SUB_PREFIX.length));
    await Promise.all(filters.map((filter) => this.removeRoute(clientId, filter)));
    await this.batchDelete(this.tables.sessions, items.map((item) => ({ clientId: item.clientId, sk: item.sk })));
  }

  // ---- subscriptions ----

  async subscribe(clientId: string, subscriptions: readonly Subscription[]): Promise<void> {
    // A filter twice in one SUBSCRIBE: the later one replaces the earlier, as across packets.
    const byFilter = [...new Map(subscriptions.map((s) => [s.filter, s])).values()];
    await Promise.all(byFilter.map((subscription) => this.addRoute(subscription)));
    await this.batchWrite(
      this.tables.sessions,
      byFilter.map((s) => ({ PutRequest: { Item: { ...s, clientId, sk: SUB_PREFIX + s.filter } } })),
    );
  }

  async unsubscribe(clientId: string, filters: readonly string[]): Promise<boolean[]> {
    const unique = [...new Set(filters)];
    const removed = await Promise.all(unique.map((filter) => this.removeRoute(clientId, filter)));
    await this.batchDelete(this.tables.sessions, unique.map((filter) => ({ clientId, sk: SUB_PREFIX + filter })));
    // A filter named twice existed for the first mention only.
    const existed = new Map(unique.map((filter, i) => [filter, removed[i]!]));
    return filters.map((filter) => {
      const found = existed.get(filter)!;
      existed.set(filter, false);
      return found;
    });
  }

  async subscriptionFilters(clientId: string): Promise<string[]> {
    const items = await this.queryAll({
      TableName: this.tables.sessions,
      KeyConditionExpression: 'clientId = :c AND begins_with(sk, :s)',
      ExpressionAttributeValues: { ':c': clientId, ':s': SUB_PREFIX },
      ProjectionExpression: 'sk',
    });
    return items.map((item) => (item.sk as string).slice(SUB_PREFIX.length));
  }

  /**
   * Strongly consistent throughout, so a subscription whose SUBACK went out is always found.
   * Round trips: one per topic level (the trie walk, exact filters read alongside the first),
   * then one Query per matching wildcard filter, in parallel.
   */
  async findSubscriptions(topic: string): Promise<Subscription[]> {
    const [exact, wildcardFilters] = await Promise.all([
      this.subscriptionsOf(topic),
      matchingWildcardFilters(topic, (prefixes) => this.readNodes(prefixes)),
    ]);
    const wildcard = await Promise.all(wildcardFilters.map((filter) => this.subscriptionsOf(filter)));
    return exact.concat(...wildcard);
  }

  private async readNodes(prefixes: readonly string[]): Promise<Map<string, TrieNode>> {
    const items = await this.batchGet(
      this.tables.subscriptions,
      prefixes.map((prefix) => ({ pk: nodeKey(prefix), sk: NODE_SORT_KEY })),
    );
    const nodes = new Map<string, TrieNode>();
    for (const item of items) {
      const refs = Number(item.refs ?? 0);
      if (refs > 0) nodes.set((item.pk as string).slice(NODE_PREFIX.length), { refs, ends: Number(item.ends ?? 0) });
    }
    return nodes;
  }

  private async subscriptionsOf(filter: string): Promise<Subscription[]> {
    const items = await this.queryAll({
      TableName: this.tables.subscriptions,
      KeyConditionExpression: 'pk = :f',
      ExpressionAttributeValues: { ':f': filterKey(filter) },
    });
    return items.map(toSubscription);
  }

  /** Trie nodes are counted up first, so a crash between the two writes over-counts (harmless) rather than hides. */
  private async addRoute(subscription: Subscription): Promise<void> {
    const { clientId, filter, ...options } = subscription;
    const wildcard = hasWildcard(filter);
    if (wildcard) await this.countNodes(filter, 1);
    const out = await this.client.send(
      new PutCommand({
        TableName: this.tables.subscriptions,
        Item: { pk: filterKey(filter), sk: clientId, ...options },
        ReturnValues: 'ALL_OLD',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    // A replaced subscription was already counted.
    if (wildcard && out.Attributes) await this.countNodes(filter, -1);
  }

  private async removeRoute(clientId: string, filter: string): Promise<boolean> {
    const out = await this.client.send(
      new DeleteCommand({
        TableName: this.tables.subscriptions,
        Key: { pk: filterKey(filter), sk: clientId },
        ReturnValues: 'ALL_OLD',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    if (!out.Attributes) return false;
    if (hasWildcard(filter)) await this.countNodes(filter, -1);
    return true;
  }

  private async countNodes(filter: string, delta: 1 | -1): Promise<void> {
    const prefixes = filterPrefixes(filter);
    await Promise.all(
      prefixes.map(async (prefix, i) => {
        const last = i === prefixes.length - 1;
        const out = await this.client.send(
          new UpdateCommand({
            TableName: this.tables.subscriptions,
            Key: { pk: nodeKey(prefix), sk: NODE_SORT_KEY },
            UpdateExpression: last ? 'ADD refs :d, ends :d' : 'ADD refs :d',
            ExpressionAttributeValues: { ':d': delta },
            ReturnValues: 'UPDATED_NEW',
            ReturnConsumedCapacity: CAPACITY,
          }),
        );
        this.meter.record('write', out.ConsumedCapacity);
        if (delta < 0 && Number(out.Attributes?.refs ?? 0) <= 0) await this.deleteNodeIfUnused(prefix);
      }),
    );
  }

  private async deleteNodeIfUnused(prefix: string): Promise<void> {
    try {
      const out = await this.client.send(
        new DeleteCommand({
          TableName: this.tables.subscriptions,
          Key: { pk: nodeKey(prefix), sk: NODE_SORT_KEY },
          ConditionExpression: 'refs <= :zero',
          ExpressionAttributeValues: { ':zero': 0 },
          ReturnConsumedCapacity: CAPACITY,
        }),
      );
      this.meter.record('write', out.ConsumedCapacity);
    } catch (error) {
      // A subscribe counted it up again meanwhile: the node stays.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      this.meter.recordFailedWrite();
    }
  }

  // ---- QoS 1 and 2 state ----

  async allocatePacketIds(clientId: string, count: number): Promise<number[]> {
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tables.sessions,
          Key: { clientId, sk: SESSION_SK },
          UpdateExpression: 'ADD nextPacketId :n',
          ConditionExpression: 'attribute_exists(clientId)',
          ExpressionAttributeValues: { ':n': count },
          ReturnValues: 'UPDATED_NEW',
          ReturnConsumedCapacity: CAPACITY,
        }),
      );
      this.meter.record('write', out.ConsumedCapacity);
      const last = Number(out.Attributes?.nextPacketId);
      // Packet identifiers are 1..65535 [MQTT-2.2.1-3]; the counter wraps around them.
      return Array.from({ length: count }, (_, i) => ((last - count + i) % 65535) + 1);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        this.meter.recordFailedWrite();
        return [];
      }
      throw error;
    }
  }

  async putOutgoing(messages: readonly OutgoingMessage[]): Promise<void> {
    await this.batchWrite(
      this.tables.sessions,
      messages.map((m) => ({ PutRequest: { Item: { ...m, sk: outKey(m.packetId), state: 'publish' } } })),
    );
  }

  async releaseOutgoing(clientId: string, packetId: number): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: outKey(packetId) },
        UpdateExpression: 'SET #s = :pubrel REMOVE payload',
        ConditionExpression: 'attribute_exists(sk)',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':pubrel': 'pubrel' },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
  }

  async completeOutgoing(clientId: string, packetId: number): Promise<boolean> {
    return this.deleteExisting(this.tables.sessions, { clientId, sk: outKey(packetId) });
  }

  async recordIncomingQos2(clientId: string, packetId: number): Promise<boolean> {
    return this.conditional(
      new PutCommand({
        TableName: this.tables.sessions,
        Item: { clientId, sk: IN_PREFIX + packetId, receivedAt: this.now() },
        ConditionExpression: 'attribute_not_exists(sk)',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
  }

  async releaseIncomingQos2(clientId: string, packetId: number): Promise<boolean> {
    return this.deleteExisting(this.tables.sessions, { clientId, sk: IN_PREFIX + packetId });
  }

  // ---- helpers ----

  private async conditional(command: UpdateCommand | PutCommand): Promise<boolean> {
    try {
      const out = await this.client.send(command as UpdateCommand);
      this.meter.record('write', out.ConsumedCapacity);
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        this.meter.recordFailedWrite();
        return false;
      }
      throw error;
    }
  }

  private async deleteExisting(table: string, key: Item): Promise<boolean> {
    const out = await this.client.send(
      new DeleteCommand({ TableName: table, Key: key, ReturnValues: 'ALL_OLD', ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    return out.Attributes !== undefined;
  }

  private async queryAll(input: ConstructorParameters<typeof QueryCommand>[0]): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({ ...input, ConsistentRead: true, ExclusiveStartKey: start, ReturnConsumedCapacity: CAPACITY }),
      );
      this.meter.record('read', out.ConsumedCapacity);
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  private async batchGet(table: string, keys: readonly Item[]): Promise<Item[]> {
    const items: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_LIMIT) {
      let pending: Item[] | undefined = keys.slice(i, i + BATCH_GET_LIMIT);
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const out = await this.client.send(
          new BatchGetCommand({
            RequestItems: { [table]: { Keys: pending, ConsistentRead: true } },
            ReturnConsumedCapacity: CAPACITY,
          }),
        );
        this.meter.record('read', out.ConsumedCapacity);
        items.push(...(out.Responses?.[table] ?? []));
        pending = out.UnprocessedKeys?.[table]?.Keys as Item[] | undefined;
      }
    }
    return items;
  }

  private async batchDelete(table: string, keys: readonly Item[]): Promise<void> {
    await this.batchWrite(table, keys.map((Key) => ({ DeleteRequest: { Key } })));
  }

  private async batchWrite(table: string, requests: readonly BatchWriteRequest[]): Promise<void> {
    const chunks: BatchWriteRequest[][] = [];
    for (let i = 0; i < requests.length; i += BATCH_WRITE_LIMIT) chunks.push(requests.slice(i, i + BATCH_WRITE_LIMIT));
    await forEachBounded(chunks, PARALLEL_BATCHES, async (chunk) => {
      let pending: BatchWriteRequest[] | undefined = chunk;
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const out = await this.client.send(
          new BatchWriteCommand({ RequestItems: { [table]: pending }, ReturnConsumedCapacity: CAPACITY }),
        );
        this.meter.record('write', out.ConsumedCapacity);
        pending = out.UnprocessedItems?.[table] as BatchWriteRequest[] | undefined;
      }
    });
  }
}

type BatchWriteRequest = { PutRequest: { Item: Item } } | { DeleteRequest: { Key: Item } };

function outKey(packetId: number): string {
  return OUT_PREFIX + String(packetId).padStart(5, '0');
}

/** TTL deletes late: an item past its expiry is treated as absent. */
function isExpired(item: Item, nowMs: number): boolean {
  return typeof item.expiresAt === 'number' && item.expiresAt * 1000 <= nowMs;
}

function toConnection(item: Item): ConnectionRecord {
  return item as unknown as ConnectionRecord;
}

function toSubscription(item: Item): Subscription {
  const { pk, sk, ...options } = item;
  return { ...(options as Omit<Subscription, 'clientId' | 'filter'>), clientId: sk as string, filter: (pk as string).slice(FILTER_PREFIX.length) };
}

function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * 2 ** attempt)));
}
