/**
 * The broker's state in DynamoDB: the only module that talks to it. Clients and table names
 * come in through the constructor; every call reports its consumed capacity to the meter.
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type {
  BrokerStore,
  ClaimedMessages,
  CloseSessionResult,
  ConnectionChanges,
  ConnectionRecord,
  DueWill,
  EnqueueResult,
  MessageProperties,
  OpenSessionRequest,
  OpenSessionResult,
  OutgoingMessage,
  QueuedMessage,
  RetainedMessage,
  SessionRecord,
  Subscription,
  WillMessage,
} from '../broker/ports';
import { forEachBounded } from '../broker/concurrency';
import type { ProtocolVersion, UserProperties } from '../protocol/codec';
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
import { matchingRetainedNodes, nodeId, retainedKey, childrenKey, levelsOf, type RetainedKey } from './retained-index';
import { TIMER_INDEX, type TableNames } from './tables';

const SESSION_SK = 'session';
const SUB_PREFIX = 'sub#';
const OUT_PREFIX = 'out#';
const IN_PREFIX = 'in#';
const QUEUE_PREFIX = 'q#';
const WILL_SK = 'will';
const CLIENT_ROUTE = 'c|';
const SHARED_ROUTE = 's|';
const SHARE_PREFIX = '$share/';
const MAX_IN_FLIGHT_IDS = 65535;
const CLAIM_BATCH = 25;
const TTL_GRACE_SECONDS = 86_400;
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
  private lastSequence = { ms: 0, n: 0 };
  private readonly instance = Math.random().toString(36).slice(2, 8);

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
      new PutCommand({
        TableName: this.tables.connections,
        Item: { topicAliases: {}, ...connection, ...(connection.will ? { will: toItemMessage(connection.will) } : {}) },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
  }

  async updateConnection(connectionId: string, changes: ConnectionChanges): Promise<void> {
    if (!changes.topicAlias) return;
    await this.conditional(
      new UpdateCommand({
        TableName: this.tables.connections,
        Key: { connectionId },
        UpdateExpression: 'SET topicAliases.#a = :t',
        ConditionExpression: 'attribute_exists(connectionId)',
        ExpressionAttributeNames: { '#a': String(changes.topicAlias[0]) },
        ExpressionAttributeValues: { ':t': changes.topicAlias[1] },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
  }

  async takeConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const out = await this.client.send(
      new DeleteCommand({ TableName: this.tables.connections, Key: { connectionId }, ReturnValues: 'ALL_OLD', ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    return out.Attributes ? toConnection(out.Attributes) : undefined;
  }

  // ---- sessions ----

  async openSession(request: OpenSessionRequest): Promise<OpenSessionResult> {
    // Claim the session first: the old item tells who held it, even when it is about to be wiped.
    const out = await this.client.send(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId: request.clientId, sk: SESSION_SK },
        UpdateExpression: [
          'SET connectionId = :c, protocolVersion = :v, connectedAt = :t, receiveMaximum = :r, topicAliasMaximum = :a, endsWithConnection = :e',
          request.maximumPacketSize === undefined ? '' : ', maximumPacketSize = :m',
          ' REMOVE expiresAt, #timer, timerAt',
          request.maximumPacketSize === undefined ? ', maximumPacketSize' : '',
          // A clean start begins with nothing in flight and nothing queued.
          request.cleanStart ? ', inflight, queued' : '',
        ].join(''),
        ExpressionAttributeNames: { '#timer': 'timer' },
        ExpressionAttributeValues: {
          ':c': request.connectionId,
          ':v': request.protocolVersion,
          ':t': this.now(),
          ':r': request.receiveMaximum,
          ':a': request.topicAliasMaximum,
          ':e': request.endsWithConnection ?? false,
          ...(request.maximumPacketSize === undefined ? {} : { ':m': request.maximumPacketSize }),
        },
        ReturnValues: 'ALL_OLD',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    const old = out.Attributes;
    const alive = old !== undefined && !isExpired(old, this.now());
    // A session bound to its connection ends with it, also when this connection takes it over
    // (MQTT 5.0 3.1.4; 3.1.1 [MQTT-3.1.2-6]: its state is never reused).
    const resumable = alive && old.endsWithConnection !== true;
    // Clean Start, or a session that expired but TTL has not deleted yet, or one that ends with
    // its connection: nothing of it survives.
    let endedSessionWill: WillMessage | undefined;
    if (request.cleanStart || (old !== undefined && !resumable)) {
      // Claimed before the wipe, so the session's pending will is published, not lost.
      if (old !== undefined) {
        const item = await this.deleteReturning(this.tables.sessions, { clientId: request.clientId, sk: WILL_SK });
        if (item) endedSessionWill = toWill(item.will as Item);
      }
      await this.deleteSessionState(request.clientId, { keepSessionItem: true });
      if (!request.cleanStart) await this.resetCounters(request.clientId);
    }
    return {
      sessionPresent: !request.cleanStart && resumable,
      ...(endedSessionWill ? { endedSessionWill } : {}),
      ...(alive && typeof old.connectionId === 'string'
        ? { previousConnectionId: old.connectionId, previousProtocolVersion: old.protocolVersion as ProtocolVersion }
        : {}),
    };
  }

  async closeSession(clientId: string, connectionId: string, endSession: boolean, expiryInterval: number): Promise<CloseSessionResult> {
    const expires = !endSession && expiryInterval !== NEVER_EXPIRES;
    const expiresAtMs = this.now() + expiryInterval * 1000;
    // Only the connection that holds the session may detach it: after a takeover it is not ours.
    const detached = await this.conditional(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: SESSION_SK },
        UpdateExpression: expires ? 'REMOVE connectionId SET expiresAt = :e, #timer = :expiry, timerAt = :at' : 'REMOVE connectionId',
        ConditionExpression: 'connectionId = :c',
        ...(expires ? { ExpressionAttributeNames: { '#timer': 'timer' } } : {}),
        ExpressionAttributeValues: {
          ':c': connectionId,
          // The sweeper ends the session at `timerAt` (its routes and queue too); TTL, a day later, only backs it up.
          ...(expires ? { ':e': Math.ceil(expiresAtMs / 1000) + TTL_GRACE_SECONDS, ':expiry': 'expiry', ':at': expiresAtMs } : {}),
        },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    if (!detached) return 'taken-over';
    if (endSession) await this.deleteSessionState(clientId);
    return 'closed';
  }

  async endExpiredSessions(now: number, limit: number): Promise<number> {
    const due = await this.dueTimers('expiry', now, limit);
    let ended = 0;
    for (const item of due) {
      const clientId = item.clientId as string;
      // Still expired and still without a connection: a client that came back keeps its session.
      const gone = await this.conditionalDelete(this.tables.sessions, { clientId, sk: SESSION_SK }, 'attribute_not_exists(connectionId) AND timerAt <= :now', {
        ':now': now,
      });
      if (!gone) continue;
      await this.deleteSessionState(clientId);
      ended++;
    }
    return ended;
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
        receiveMaximum: typeof item.receiveMaximum === 'number' ? item.receiveMaximum : MAX_IN_FLIGHT_IDS,
        topicAliasMaximum: typeof item.topicAliasMaximum === 'number' ? item.topicAliasMaximum : 0,
      });
    }
    return sessions;
  }

  private async resetCounters(clientId: string): Promise<void> {
    const out = await this.client.send(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: SESSION_SK },
        UpdateExpression: 'REMOVE inflight, queued',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
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
    await Promise.all(filters.map((filter) => this.removeRoute(clientId, parseFilter(filter))));
    await this.batchDelete(this.tables.sessions, items.map((item) => ({ clientId: item.clientId, sk: item.sk })));
  }

  // ---- subscriptions ----

  async subscribe(clientId: string, subscriptions: readonly Subscription[]): Promise<boolean[]> {
    // A filter twice in one SUBSCRIBE: the later one replaces the earlier, as across packets.
    const byFilter = [...new Map(subscriptions.map((s) => [sentFilter(s), s])).values()];
    const existed = await Promise.all(byFilter.map((subscription) => this.addRoute(subscription)));
    await this.batchWrite(
      this.tables.sessions,
      byFilter.map((s) => ({ PutRequest: { Item: { ...s, clientId, sk: SUB_PREFIX + sentFilter(s) } } })),
    );
    const existedBy = new Map(byFilter.map((s, i) => [sentFilter(s), existed[i]!]));
    // The first mention of a filter tells whether it existed; a repeat replaces the one just made.
    const seen = new Set<string>();
    return subscriptions.map((s) => {
      const key = sentFilter(s);
      const first = !seen.has(key);
      seen.add(key);
      return first ? existedBy.get(key)! : true;
    });
  }

  async unsubscribe(clientId: string, filters: readonly string[]): Promise<boolean[]> {
    const unique = [...new Set(filters)];
    const removed = await Promise.all(unique.map((filter) => this.removeRoute(clientId, parseFilter(filter))));
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
  private async addRoute(subscription: Subscription): Promise<boolean> {
    const { clientId, filter, shareGroup, ...options } = subscription;
    const wildcard = hasWildcard(filter);
    if (wildcard) await this.countNodes(filter, 1);
    const out = await this.client.send(
      new PutCommand({
        TableName: this.tables.subscriptions,
        Item: { pk: filterKey(filter), sk: routeSortKey(clientId, shareGroup), ...options },
        ReturnValues: 'ALL_OLD',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    // A replaced subscription was already counted.
    if (wildcard && out.Attributes) await this.countNodes(filter, -1);
    return out.Attributes !== undefined;
  }

  private async removeRoute(clientId: string, { filter, shareGroup }: ParsedFilter): Promise<boolean> {
    const out = await this.client.send(
      new DeleteCommand({
        TableName: this.tables.subscriptions,
        Key: { pk: filterKey(filter), sk: routeSortKey(clientId, shareGroup) },
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

  async startDelivery(clientId: string, connectionId: string, receiveMaximum: number): Promise<number | undefined> {
    return (await this.startDeliveries(clientId, connectionId, receiveMaximum, 1))?.[0];
  }

  async startDeliveries(clientId: string, connectionId: string, receiveMaximum: number, count: number): Promise<number[] | undefined> {
    return this.allocatePacketIds(clientId, connectionId, receiveMaximum, count, 'nothing-queued');
  }

  /**
   * `count` packet ids for messages going in flight to `connectionId`, counted in flight when the
   * client's Receive Maximum is below the protocol's own ([MQTT-4.9.0-2]), all or none. New
   * messages go only if nothing is queued ahead (order); messages taken from the queue count
   * themselves out of it.
   */
  private async allocatePacketIds(
    clientId: string,
    connectionId: string,
    receiveMaximum: number,
    count: number,
    source: 'nothing-queued' | 'from-queue',
  ): Promise<number[] | undefined> {
    if (count > receiveMaximum) return undefined;
    const counts = countsInFlight(receiveMaximum);
    const fromQueue = source === 'from-queue';
    const out = await this.unlessConditionFails(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: SESSION_SK },
        UpdateExpression: ['ADD nextPacketId :n', counts ? 'inflight :n' : '', fromQueue ? 'queued :minus' : ''].filter(Boolean).join(', '),
        ConditionExpression: [
          'connectionId = :c',
          counts ? '(attribute_not_exists(inflight) OR inflight <= :room)' : '',
          fromQueue ? '' : '(attribute_not_exists(queued) OR queued <= :zero)',
        ]
          .filter(Boolean)
          .join(' AND '),
        ExpressionAttributeValues: {
          ':n': count,
          ':c': connectionId,
          ...(counts ? { ':room': receiveMaximum - count } : {}),
          ...(fromQueue ? { ':minus': -count } : { ':zero': 0 }),
        },
        ReturnValues: 'UPDATED_NEW',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    if (!out) return undefined;
    const last = Number(out.Attributes?.nextPacketId);
    return Array.from({ length: count }, (_, i) => packetIdOf(last - count + 1 + i));
  }

  async enqueue(message: QueuedMessage): Promise<EnqueueResult> {
    const sk = QUEUE_PREFIX + this.sequence();
    await this.put(this.tables.sessions, { ...toItemMessage(message), sk });
    // The count after the item: a drain that sees the count always finds the item.
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tables.sessions,
          Key: { clientId: message.clientId, sk: SESSION_SK },
          UpdateExpression: 'ADD queued :one',
          ConditionExpression: 'attribute_exists(clientId) AND (attribute_not_exists(timerAt) OR timerAt > :now)',
          ExpressionAttributeValues: { ':one': 1, ':now': this.now() },
          ReturnValues: 'ALL_NEW',
          ReturnConsumedCapacity: CAPACITY,
        }),
      );
      this.meter.record('write', out.ConsumedCapacity);
      const session = out.Attributes ?? {};
      const room = Number(session.inflight ?? 0) < Number(session.receiveMaximum ?? MAX_IN_FLIGHT_IDS);
      return typeof session.connectionId === 'string' && room ? { queued: true, drainOn: session.connectionId } : { queued: true };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      this.meter.recordFailedWrite();
      await this.deleteExisting(this.tables.sessions, { clientId: message.clientId, sk });
      return { queued: false };
    }
  }

  async claimQueued(clientId: string, connectionId: string, receiveMaximum: number): Promise<ClaimedMessages> {
    const messages: OutgoingMessage[] = [];
    for (;;) {
      const batch = await this.queryPage({
        TableName: this.tables.sessions,
        KeyConditionExpression: 'clientId = :c AND begins_with(sk, :q)',
        ExpressionAttributeValues: { ':c': clientId, ':q': QUEUE_PREFIX },
        Limit: CLAIM_BATCH,
      });
      for (const item of batch) {
        // Claim: whoever deletes the item sends it; a concurrent drain moves on.
        const claimed = await this.deleteReturning(this.tables.sessions, { clientId, sk: item.sk as string });
        if (!claimed) continue;
        const message = toQueued(claimed);
        if (message.expiresAtMs !== undefined && message.expiresAtMs <= this.now()) {
          await this.addToSession(clientId, { queued: -1 });
          continue;
        }
        const packetId = await this.claimSlot(clientId, connectionId, receiveMaximum);
        if (packetId === undefined) {
          // No room (or the client left): the message goes back where it was.
          await this.put(this.tables.sessions, claimed);
          return { messages, more: true };
        }
        messages.push({ ...message, packetId });
      }
      if (batch.length < CLAIM_BATCH) return { messages, more: false };
    }
  }

  private async claimSlot(clientId: string, connectionId: string, receiveMaximum: number): Promise<number | undefined> {
    return (await this.allocatePacketIds(clientId, connectionId, receiveMaximum, 1, 'from-queue'))?.[0];
  }

  async putOutgoing(messages: readonly OutgoingMessage[]): Promise<void> {
    await this.batchWrite(
      this.tables.sessions,
      messages.map((m) => ({ PutRequest: { Item: { ...toItemMessage(m), sk: outKey(m.packetId), state: 'publish', sentSeq: this.sequence() } } })),
    );
  }

  async setInFlight(clientId: string, count: number): Promise<void> {
    await this.conditional(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: SESSION_SK },
        UpdateExpression: 'SET inflight = :n',
        ConditionExpression: 'attribute_exists(clientId)',
        ExpressionAttributeValues: { ':n': count },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
  }

  async listOutgoing(clientId: string): Promise<OutgoingMessage[]> {
    const items = await this.queryAll({
      TableName: this.tables.sessions,
      KeyConditionExpression: 'clientId = :c AND begins_with(sk, :o)',
      ExpressionAttributeValues: { ':c': clientId, ':o': OUT_PREFIX },
    });
    return items
      .sort((a, b) => String(a.sentSeq ?? '').localeCompare(String(b.sentSeq ?? '')))
      .map((item) => ({ ...toQueued(item), packetId: Number(item.packetId), state: item.state === 'pubrel' ? 'pubrel' : 'publish' }));
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

  async completeOutgoing(clientId: string, packetId: number, receiveMaximum: number): Promise<{ found: boolean; queued: boolean }> {
    const found = await this.deleteExisting(this.tables.sessions, { clientId, sk: outKey(packetId) });
    // Without a count in flight nothing waits for room: a queue only forms while the client is away.
    if (!found || !countsInFlight(receiveMaximum)) return { found, queued: false };
    const session = await this.addToSession(clientId, { inflight: -1 });
    return { found, queued: Number(session?.queued ?? 0) > 0 };
  }

  /** ADD to the session item's counters, if the session exists; its attributes after. */
  private async addToSession(clientId: string, deltas: Record<string, number>): Promise<Item | undefined> {
    const names = Object.keys(deltas);
    const out = await this.unlessConditionFails(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: SESSION_SK },
        UpdateExpression: `ADD ${names.map((name, i) => `${name} :d${i}`).join(', ')}`,
        ConditionExpression: 'attribute_exists(clientId)',
        ExpressionAttributeValues: Object.fromEntries(names.map((name, i) => [`:d${i}`, deltas[name]])),
        ReturnValues: 'ALL_NEW',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    return out?.Attributes;
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

  async hasIncomingQos2(clientId: string, packetId: number): Promise<boolean> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: IN_PREFIX + packetId },
        ProjectionExpression: 'sk',
        ConsistentRead: true,
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('read', out.ConsumedCapacity);
    return out.Item !== undefined;
  }

  async releaseIncomingQos2(clientId: string, packetId: number): Promise<boolean> {
    return this.deleteExisting(this.tables.sessions, { clientId, sk: IN_PREFIX + packetId });
  }

  async countIncomingQos2(clientId: string): Promise<number> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tables.sessions,
        KeyConditionExpression: 'clientId = :c AND begins_with(sk, :i)',
        ExpressionAttributeValues: { ':c': clientId, ':i': IN_PREFIX },
        Select: 'COUNT',
        ConsistentRead: true,
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('read', out.ConsumedCapacity);
    return out.Count ?? 0;
  }

  // ---- retained messages ----

  async putRetained(message: RetainedMessage): Promise<void> {
    const levels = message.topic.split('/');
    const key = retainedKey(levels);
    if (message.payload.length === 0) {
      // [MQTT-3.3.1-6] an empty retained message removes the topic's retained message
      await this.conditional(
        new UpdateCommand({
          TableName: this.tables.retained,
          Key: key,
          UpdateExpression: 'REMOVE message',
          ConditionExpression: 'attribute_exists(pk)',
          ReturnConsumedCapacity: CAPACITY,
        }),
      );
      return;
    }
    const stored = { ...toItemMessage(message), retain: true };
    // [MQTT-3.3.1-5] a new retained message replaces the topic's previous one
    const replaced = await this.conditional(
      new UpdateCommand({
        TableName: this.tables.retained,
        Key: key,
        UpdateExpression: 'SET message = :m',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':m': stored },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    if (replaced) return;
    // A topic new to the tree: its ancestors first, so a walk never misses a stored message.
    await Promise.all(
      levels.slice(0, -1).map((_, i) =>
        this.conditional(
          new UpdateCommand({
            TableName: this.tables.retained,
            Key: retainedKey(levels.slice(0, i + 1)),
            UpdateExpression: 'SET createdAt = if_not_exists(createdAt, :t)',
            ExpressionAttributeValues: { ':t': this.now() },
            ReturnConsumedCapacity: CAPACITY,
          }),
        ),
      ),
    );
    await this.put(this.tables.retained, { ...key, createdAt: this.now(), message: stored });
  }

  async findRetained(filter: string): Promise<RetainedMessage[]> {
    const nodes = await matchingRetainedNodes<Item>(filter, {
      nodes: async (keys) => {
        const items = await this.batchGet(this.tables.retained, keys.map((key) => ({ ...key })));
        return new Map(items.map((item) => [nodeId(levelsOf(item as unknown as RetainedKey)), item]));
      },
      children: async (levels) => {
        const items = await this.queryAll({
          TableName: this.tables.retained,
          KeyConditionExpression: 'pk = :p',
          ExpressionAttributeValues: { ':p': childrenKey(levels) },
        });
        return items.map((item) => ({ levels: levelsOf(item as unknown as RetainedKey), item }));
      },
    });
    const now = this.now();
    return nodes.flatMap((node): RetainedMessage[] => {
      const message = node.item?.message as Item | undefined;
      if (!message) return [];
      const retained = toMessage(message);
      // [MQTT-3.3.2-5] an expired retained message is not delivered
      return retained.expiresAtMs !== undefined && retained.expiresAtMs <= now ? [] : [retained];
    });
  }

  // ---- wills ----

  async scheduleWill(clientId: string, will: WillMessage, dueAt: number): Promise<boolean> {
    // Only while no connection holds the session: a client that reconnected between its old
    // connection's close and this write has cancelled the will already [MQTT-3.1.3-9].
    try {
      const out = await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              ConditionCheck: {
                TableName: this.tables.sessions,
                Key: { clientId, sk: SESSION_SK },
                ConditionExpression: 'attribute_exists(clientId) AND attribute_not_exists(connectionId)',
              },
            },
            {
              Put: {
                TableName: this.tables.sessions,
                Item: { clientId, sk: WILL_SK, will: toItemMessage(will), timer: 'will', timerAt: dueAt },
              },
            },
          ],
          ReturnConsumedCapacity: CAPACITY,
        }),
      );
      this.meter.record('write', out.ConsumedCapacity);
      return true;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      this.meter.recordFailedWrite();
      return false;
    }
  }

  async cancelWill(clientId: string): Promise<void> {
    await this.deleteExisting(this.tables.sessions, { clientId, sk: WILL_SK });
  }

  async claimDueWills(now: number, limit: number): Promise<DueWill[]> {
    const due = await this.dueTimers('will', now, limit);
    const wills: DueWill[] = [];
    for (const item of due) {
      const claimed = await this.deleteReturning(this.tables.sessions, { clientId: item.clientId as string, sk: WILL_SK }, 'timerAt <= :now', {
        ':now': now,
      });
      if (claimed) wills.push({ clientId: claimed.clientId as string, will: toWill(claimed.will as Item) });
    }
    return wills;
  }

  /** Items of the timer index due by `now` (the index is eventually consistent: callers claim each item). */
  private async dueTimers(timer: string, now: number, limit: number): Promise<Item[]> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tables.sessions,
        IndexName: TIMER_INDEX,
        KeyConditionExpression: '#timer = :t AND timerAt <= :now',
        ExpressionAttributeNames: { '#timer': 'timer' },
        ExpressionAttributeValues: { ':t': timer, ':now': now },
        Limit: limit,
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('read', out.ConsumedCapacity);
    return out.Items ?? [];
  }

  // ---- helpers ----

  /** Sortable and unique within the process: epoch ms, then a counter. */
  private sequence(): string {
    const now = this.now();
    this.lastSequence = now > this.lastSequence.ms ? { ms: now, n: 0 } : { ms: this.lastSequence.ms, n: this.lastSequence.n + 1 };
    return `${String(this.lastSequence.ms).padStart(15, '0')}#${String(this.lastSequence.n).padStart(6, '0')}#${this.instance}`;
  }

  private async put(table: string, item: Item): Promise<void> {
    const out = await this.client.send(new PutCommand({ TableName: table, Item: item, ReturnConsumedCapacity: CAPACITY }));
    this.meter.record('write', out.ConsumedCapacity);
  }

  /** Delete an item and return it; undefined when it was not there (or the condition failed). */
  private async deleteReturning(table: string, key: Item, condition?: string, values?: Record<string, unknown>): Promise<Item | undefined> {
    const out = await this.unlessConditionFails(
      new DeleteCommand({
        TableName: table,
        Key: key,
        ConditionExpression: condition ? `attribute_exists(sk) AND ${condition}` : 'attribute_exists(sk)',
        ...(values ? { ExpressionAttributeValues: values } : {}),
        ReturnValues: 'ALL_OLD',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    return out?.Attributes;
  }

  /** A conditional write, metered: the item it returned, or undefined when its condition failed. */
  private async unlessConditionFails(command: UpdateCommand | PutCommand | DeleteCommand): Promise<{ Attributes?: Item } | undefined> {
    try {
      const out = await this.client.send(command as UpdateCommand);
      this.meter.record('write', out.ConsumedCapacity);
      return { ...(out.Attributes ? { Attributes: out.Attributes } : {}) };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      this.meter.recordFailedWrite();
      return undefined;
    }
  }

  private async conditionalDelete(table: string, key: Item, condition: string, values: Record<string, unknown>): Promise<boolean> {
    return (await this.deleteReturning(table, key, condition, values)) !== undefined;
  }

  private async queryPage(input: ConstructorParameters<typeof QueryCommand>[0]): Promise<Item[]> {
    const out = await this.client.send(new QueryCommand({ ...input, ConsistentRead: true, ReturnConsumedCapacity: CAPACITY }));
    this.meter.record('read', out.ConsumedCapacity);
    return out.Items ?? [];
  }

  private async conditional(command: UpdateCommand | PutCommand | DeleteCommand): Promise<boolean> {
    return (await this.unlessConditionFails(command)) !== undefined;
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

/** TTL deletes late (and sessions end at their timer, before TTL): an item past its expiry is treated as absent. */
function isExpired(item: Item, nowMs: number): boolean {
  if (item.timer === 'expiry' && typeof item.timerAt === 'number') return item.timerAt <= nowMs;
  return typeof item.expiresAt === 'number' && item.expiresAt * 1000 <= nowMs;
}

function toConnection(item: Item): ConnectionRecord {
  const { will, ...rest } = item;
  return { ...(rest as unknown as ConnectionRecord), ...(will ? { will: toWill(will as Item) } : {}) };
}

function toSubscription(item: Item): Subscription {
  const { pk, sk, ...options } = item;
  const route = sk as string;
  const filter = (pk as string).slice(FILTER_PREFIX.length);
  const base = options as Omit<Subscription, 'clientId' | 'filter'>;
  if (route.startsWith(CLIENT_ROUTE)) return { ...base, clientId: route.slice(CLIENT_ROUTE.length), filter };
  // `s|<share name>/<client id>`: a share name never contains '/'
  const rest = route.slice(SHARED_ROUTE.length);
  const slash = rest.indexOf('/');
  return { ...base, clientId: rest.slice(slash + 1), filter, shareGroup: rest.slice(0, slash) };
}

function routeSortKey(clientId: string, shareGroup: string | undefined): string {
  return shareGroup === undefined ? CLIENT_ROUTE + clientId : `${SHARED_ROUTE}${shareGroup}/${clientId}`;
}

interface ParsedFilter {
  readonly filter: string;
  readonly shareGroup?: string;
}

/** `$share/<group>/<filter>` -> its parts; any other filter as it is. */
function parseFilter(sent: string): ParsedFilter {
  if (!sent.startsWith(SHARE_PREFIX)) return { filter: sent };
  const rest = sent.slice(SHARE_PREFIX.length);
  const slash = rest.indexOf('/');
  return { shareGroup: rest.slice(0, slash), filter: rest.slice(slash + 1) };
}

function sentFilter(subscription: Subscription): string {
  return subscription.shareGroup === undefined ? subscription.filter : `${SHARE_PREFIX}${subscription.shareGroup}/${subscription.filter}`;
}

/**
 * A client that accepts the protocol's whole 65535 needs no count of messages in flight (packet
 * ids run out no sooner): one write less per delivery's acknowledgement.
 */
function countsInFlight(receiveMaximum: number): boolean {
  return receiveMaximum < MAX_IN_FLIGHT_IDS;
}

/** Packet identifiers are 1..65535 [MQTT-2.2.1-3]; the session's counter wraps around them. */
function packetIdOf(counter: number): number {
  return ((counter - 1) % MAX_IN_FLIGHT_IDS) + 1;
}

function toMessage(item: Item): RetainedMessage {
  return {
    topic: item.topic as string,
    payload: Buffer.from((item.payload as Uint8Array | undefined) ?? new Uint8Array()),
    qos: Number(item.qos ?? 0) as RetainedMessage['qos'],
    retain: Boolean(item.retain),
    ...(item.properties ? { properties: toProperties(item.properties as Item) } : {}),
    ...(typeof item.expiresAtMs === 'number' ? { expiresAtMs: item.expiresAtMs } : {}),
  };
}

/**
 * A message as an item. User properties are kept as a list of [name, value] pairs: a DynamoDB map
 * does not keep the order of its keys, and the broker must ([MQTT-3.3.2-18], [MQTT-3.1.3-10]).
 */
function toItemMessage<M extends { readonly properties?: MessageProperties }>(message: M): M | (Omit<M, 'properties'> & { properties: Item }) {
  const userProperties = message.properties?.userProperties;
  if (!userProperties) return message;
  return { ...message, properties: { ...message.properties, userProperties: Object.entries(userProperties) } };
}

/** Binary attributes come back as Uint8Array; the codec wants Buffers. User properties come back as pairs. */
function toProperties(item: Item): MessageProperties {
  const { correlationData, userProperties, ...rest } = item;
  return {
    ...(rest as MessageProperties),
    ...(correlationData ? { correlationData: Buffer.from(correlationData as Uint8Array) } : {}),
    ...(userProperties
      ? { userProperties: Array.isArray(userProperties) ? Object.fromEntries(userProperties as Array<[string, string | string[]]>) : (userProperties as UserProperties) }
      : {}),
  };
}

function toQueued(item: Item): QueuedMessage {
  return {
    ...toMessage(item),
    clientId: item.clientId as string,
    ...(Array.isArray(item.subscriptionIdentifiers) ? { subscriptionIdentifiers: item.subscriptionIdentifiers.map(Number) } : {}),
  };
}

function toWill(item: Item): WillMessage {
  return {
    ...toMessage(item),
    ...(typeof item.delayInterval === 'number' ? { delayInterval: item.delayInterval } : {}),
  };
}

function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * 2 ** attempt)));
}
