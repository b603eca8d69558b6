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
  ConnectionEndChanges,
  ConnectionRecord,
  DeliveryStart,
  DueWill,
  EnqueueResult,
  MessageProperties,
  OpenSessionRequest,
  OpenSessionResult,
  OutgoingMessage,
  QoS2Receipt,
  QueuedMessage,
  RetainedMessage,
  SessionRecord,
  Subscription,
  WillMessage,
} from '../broker/ports';
import { forEachBounded } from '../util/concurrency';
import { connectHold, StoreUnavailableError } from '../broker/ports';
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
const ONCE_PREFIX = 'd#';
const WILL_SK = 'will';
const CLIENT_ROUTE = 'c|';
const SHARED_ROUTE = 's|';
const SHARE_PREFIX = '$share/';
const MAX_IN_FLIGHT_IDS = 65535;
const CLAIM_BATCH = 25;
/** A transaction holds 100 items: the session, and per message its record and at most one mark. */
const MESSAGES_PER_TRANSACTION = 49;
/** Attempts of a transaction that keeps losing to concurrent ones before the store reports itself busy. */
const MAX_CONTENDED_ATTEMPTS = 30;
const TTL_GRACE_SECONDS = 86_400;
/** How long the end of a connection (or a due will's publication) is held by whoever started it before another may redo it. */
const CONNECTION_END_LEASE_MS = 30_000;
/** How long a CONNECT or a drain may hold a session's deliveries back before others go on without it (it died). */
const HOLD_LEASE_MS = 30_000;
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

/** Transitional: one class serves every concern's port until the adapters are split by concern. */
export class DynamoBrokerStore implements BrokerStore {
  get connections(): this { return this; }
  get sessions(): this { return this; }
  get subscriptions(): this { return this; }
  get deliveries(): this { return this; }
  get receipts(): this { return this; }
  get retained(): this { return this; }
  get wills(): this { return this; }

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

  async claimConnectionEnd(connectionId: string, changes: ConnectionEndChanges = {}): Promise<ConnectionRecord | undefined> {
    const now = this.now();
    const out = await this.unlessConditionFails(
      new UpdateCommand({
        TableName: this.tables.connections,
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
          ':stale': now - CONNECTION_END_LEASE_MS,
          ...(changes.sessionExpiryInterval !== undefined ? { ':e': changes.sessionExpiryInterval } : {}),
        },
        ReturnValues: 'ALL_NEW',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    return out?.Attributes ? toConnection(out.Attributes) : undefined;
  }

  async deleteConnection(connectionId: string): Promise<void> {
    await this.deleteExisting(this.tables.connections, { connectionId });
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
          // Whom this claim takes the session from: if this CONNECT dies before closing it, the next claim closes it.
          ', takenOver = if_not_exists(connectionId, :none), takenOverVersion = if_not_exists(protocolVersion, :v)',
          request.maximumPacketSize === undefined ? '' : ', maximumPacketSize = :m',
          // New deliveries wait (queued) until this CONNECT has answered and resent what was in flight.
          ', heldBy = :hold, heldUntil = :until',
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
          ':none': '',
          ':hold': connectHold(request.connectionId),
          ':until': this.now() + HOLD_LEASE_MS,
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
    const unfinished = typeof old?.takenOver === 'string' && old.takenOver !== '' && old.takenOver !== old.connectionId ? old.takenOver : undefined;
    return {
      sessionPresent: !request.cleanStart && resumable,
      ...(endedSessionWill ? { endedSessionWill } : {}),
      ...(alive && typeof old.connectionId === 'string'
        ? { previousConnectionId: old.connectionId, previousProtocolVersion: old.protocolVersion as ProtocolVersion }
        : {}),
      ...(unfinished ? { earlierTakenOver: { connectionId: unfinished, protocolVersion: Number(old!.takenOverVersion ?? 4) as ProtocolVersion } } : {}),
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
        UpdateExpression: expires
          ? 'REMOVE connectionId, heldBy, heldUntil SET closedConnectionId = :c, expiresAt = :e, #timer = :expiry, timerAt = :at'
          : 'REMOVE connectionId, heldBy, heldUntil SET closedConnectionId = :c',
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
    // Detached by this connection's own earlier end (which died half way): what it did, done again.
    if (!detached && !(await this.closedBy(clientId, connectionId))) return 'taken-over';
    if (endSession) await this.deleteSessionState(clientId);
    return 'closed';
  }

  /** Whether the session was last detached by `connectionId` (or has ended altogether) and no connection holds it now. */
  private async closedBy(clientId: string, connectionId: string): Promise<boolean> {
    const session = await this.readSession(clientId);
    return session === undefined || (session.connectionId === undefined && session.closedConnectionId === connectionId);
  }

  async endExpiredSessions(now: number, limit: number): Promise<{ ended: number; wills: DueWill[] }> {
    const due = await this.dueTimers('expiry', now, limit);
    let ended = 0;
    const wills: DueWill[] = [];
    for (const item of due) {
      const clientId = item.clientId as string;
      // Still expired and still without a connection: a client that came back keeps its session.
      const gone = await this.conditionalDelete(this.tables.sessions, { clientId, sk: SESSION_SK }, 'attribute_not_exists(connectionId) AND timerAt <= :now', {
        ':now': now,
      });
      if (!gone) continue;
      // A delayed will still pending is published now, as its session ends [MQTT-3.1.2-8] (unless
      // claimDueWills has it already: its due time can fall a moment after the session's end).
      const will = await this.deleteReturning(this.tables.sessions, { clientId, sk: WILL_SK }, 'attribute_not_exists(claimedAt) OR claimedAt < :stale', {
        ':stale': now - CONNECTION_END_LEASE_MS,
      });
      if (will) wills.push({ clientId, will: toWill(will.will as Item), id: String(will.timerAt) });
      await this.deleteSessionState(clientId);
      ended++;
    }
    return { ended, wills };
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
        // Until its CONNECT has answered (and resent what was in flight), a connection takes no deliveries:
        // QoS 0 is not sent to it, QoS 1/2 queue for it [MQTT-3.2.0-1].
        ...(typeof item.connectionId === 'string' && !connecting(item, now) ? { connectionId: item.connectionId } : {}),
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
  //
  // A message goes in flight in one transaction: its packet id (the session's counter), the count
  // of messages in flight (under the client's Receive Maximum), the message itself under `out#<id>`
  // and, for a QoS 2 delivery of a QoS 2 PUBLISH, its exactly-once mark. A handler that dies before
  // it leaves nothing; after it, the message is in flight and any later CONNECT of the client finds
  // it to resend. The counter is read first and the transaction is conditioned on it, so concurrent
  // handlers never hand out the same packet id.

  async startDeliveries(clientId: string, connectionId: string, receiveMaximum: number, messages: readonly QueuedMessage[]): Promise<DeliveryStart[]> {
    const answers: DeliveryStart[] = messages.map(() => 'queue');
    let pending = messages.map((_, i) => i);
    for (let attempt = 0; pending.length > 0; attempt++) {
      const session = await this.readSession(clientId);
      if (!session || !canStart(session, connectionId, this.now()) || Number(session.queued ?? 0) > 0) break;
      const room = countsInFlight(receiveMaximum) ? receiveMaximum - Number(session.inflight ?? 0) : pending.length;
      const chunk = pending.slice(0, Math.min(room, MESSAGES_PER_TRANSACTION));
      if (chunk.length === 0) break;
      const outcome = await this.recordInFlight(clientId, connectionId, receiveMaximum, session, chunk.map((i) => messages[i]!), []);
      if (outcome.ok) {
        chunk.forEach((i, k) => (answers[i] = { packetId: outcome.claimed[k]!.packetId }));
        pending = pending.slice(chunk.length);
      } else if (outcome.duplicate !== undefined) {
        // Delivered before (by an earlier run of the same PUBLISH): done; the others try again.
        const done = chunk[outcome.duplicate]!;
        answers[done] = 'duplicate';
        pending = pending.filter((i) => i !== done);
      } else {
        await contended(attempt);
      }
    }
    return answers;
  }

  async enqueue(message: QueuedMessage): Promise<EnqueueResult> {
    const { clientId } = message;
    const written = await this.transact([
      {
        Update: {
          TableName: this.tables.sessions,
          Key: { clientId, sk: SESSION_SK },
          UpdateExpression: 'ADD queued :one',
          ConditionExpression: 'attribute_exists(clientId) AND (attribute_not_exists(timerAt) OR timerAt > :now)',
          ExpressionAttributeValues: { ':one': 1, ':now': this.now() },
        },
      },
      { Put: { TableName: this.tables.sessions, Item: { ...messageItem(message), sk: QUEUE_PREFIX + this.sequence() } } },
      ...this.onceMarks([message]),
    ]);
    // The session is gone (or ended), or the mark says it was delivered before: nothing to keep.
    if (!written.ok) return { queued: false };
    // Whoever queued last drains, unless the client's CONNECT is still resending (it drains after).
    const session = await this.readSession(clientId);
    const room = session !== undefined && Number(session.inflight ?? 0) < Number(session.receiveMaximum ?? MAX_IN_FLIGHT_IDS);
    return session && typeof session.connectionId === 'string' && canStart(session, session.connectionId, this.now()) && room
      ? { queued: true, drainOn: session.connectionId }
      : { queued: true };
  }

  async claimQueued(clientId: string, connectionId: string, receiveMaximum: number, hold: string): Promise<ClaimedMessages> {
    const messages: OutgoingMessage[] = [];
    for (let attempt = 0; ; attempt++) {
      const session = await this.readSession(clientId);
      // Another drain holds the session: it sends what is queued, in order, before letting go.
      if (!session || !canStart(session, connectionId, this.now(), hold)) return { messages, more: Number(session?.queued ?? 0) > 0 };
      const room = countsInFlight(receiveMaximum) ? receiveMaximum - Number(session.inflight ?? 0) : CLAIM_BATCH;
      if (room <= 0) return { messages, more: Number(session.queued ?? 0) > 0 };
      const items = await this.queryPage({
        TableName: this.tables.sessions,
        KeyConditionExpression: 'clientId = :c AND begins_with(sk, :q)',
        ExpressionAttributeValues: { ':c': clientId, ':q': QUEUE_PREFIX },
        Limit: Math.min(room, CLAIM_BATCH),
      });
      if (items.length === 0) return { messages, more: false };
      const outcome = await this.recordInFlight(clientId, connectionId, receiveMaximum, session, items.map(toQueued), items, hold);
      if (outcome.ok) messages.push(...outcome.claimed);
      // Another drain took some of them, or the counter moved: look again.
      else await contended(attempt);
    }
  }

  /**
   * One transaction: `messages` in flight with the next packet ids (counted under the Receive
   * Maximum when it is below 65535), their exactly-once marks, and, when they come from the queue,
   * their queue items (`fromQueue`, same order) deleted, the expired ones without going in flight.
   * Conditioned on the client still on `connectionId`, not being resumed, the counter as read, room
   * for them all, and (new messages) nothing queued ahead.
   */
  private async recordInFlight(
    clientId: string,
    connectionId: string,
    receiveMaximum: number,
    session: Item,
    messages: readonly QueuedMessage[],
    fromQueue: readonly Item[],
    hold?: string,
  ): Promise<{ ok: true; claimed: OutgoingMessage[] } | { ok: false; duplicate?: number }> {
    const now = this.now();
    const live = fromQueue.length > 0 ? messages.filter((m) => m.expiresAtMs === undefined || m.expiresAtMs > now) : messages;
    const counter = Number(session.nextPacketId ?? 0);
    const counts = countsInFlight(receiveMaximum);
    const outgoing = live.map((message, i) => ({ ...message, packetId: packetIdOf(counter + 1 + i) }));
    const marks = fromQueue.length > 0 ? [] : this.onceMarks(messages);
    const sets = ['nextPacketId = :next', ...(hold ? ['heldBy = :hold', 'heldUntil = :until'] : [])];
    const adds = [...(counts && live.length > 0 ? ['inflight :n'] : []), ...(fromQueue.length > 0 ? ['queued :minus'] : [])];
    const update = {
      TableName: this.tables.sessions,
      Key: { clientId, sk: SESSION_SK },
      UpdateExpression: `SET ${sets.join(', ')}${adds.length > 0 ? ` ADD ${adds.join(', ')}` : ''}`,
      ConditionExpression: [
        // A drain holds the session while it sends (others queue behind it); new messages start only when nobody holds it.
        `connectionId = :c AND (attribute_not_exists(heldUntil) OR heldUntil < :now${hold ? ' OR heldBy = :hold' : ''})`,
        counter === 0 ? 'attribute_not_exists(nextPacketId)' : 'nextPacketId = :counter',
        counts ? '(attribute_not_exists(inflight) OR inflight <= :room)' : '',
        fromQueue.length > 0 ? '' : '(attribute_not_exists(queued) OR queued <= :zero)',
      ]
        .filter(Boolean)
        .join(' AND '),
      ExpressionAttributeValues: {
        ':next': counter + live.length,
        ':c': connectionId,
        ':now': now,
        ...(hold ? { ':hold': hold, ':until': now + HOLD_LEASE_MS } : {}),
        ...(counter === 0 ? {} : { ':counter': counter }),
        ...(counts && live.length > 0 ? { ':n': live.length } : {}),
        ...(counts ? { ':room': receiveMaximum - live.length } : {}),
        ...(fromQueue.length > 0 ? { ':minus': -fromQueue.length } : { ':zero': 0 }),
      },
    };
    const written = await this.transact([
      { Update: update },
      ...fromQueue.map((item) => ({
        Delete: { TableName: this.tables.sessions, Key: { clientId, sk: item.sk }, ConditionExpression: 'attribute_exists(sk)' },
      })),
      ...outgoing.map((message) => ({ Put: { TableName: this.tables.sessions, Item: this.outgoingItem(message) } })),
      ...marks,
    ]);
    if (written.ok) return { ok: true, claimed: outgoing };
    // A mark that exists: that message was delivered before (its index in `messages`).
    const markFailed = written.failed.findIndex((failed, i) => failed && i >= 1 + fromQueue.length + outgoing.length);
    if (markFailed < 0) return { ok: false };
    const marked = messages.flatMap((m, i) => (m.once ? [i] : []));
    return { ok: false, duplicate: marked[markFailed - 1 - fromQueue.length - outgoing.length]! };
  }

  /**
   * A transaction, metered; retried while it only collides with concurrent ones (bounded). When
   * a condition fails: which items' conditions failed.
   */
  private async transact(items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>): Promise<{ ok: true } | { ok: false; failed: boolean[] }> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(new TransactWriteCommand({ TransactItems: items }));
        this.meter.recordTransaction(items);
        return { ok: true };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        this.meter.recordFailedWrite();
        const reasons = error.CancellationReasons ?? [];
        const failed = reasons.map((reason) => reason.Code === 'ConditionalCheckFailed');
        if (failed.some(Boolean) || !reasons.some((reason) => reason.Code === 'TransactionConflict')) return { ok: false, failed };
        await contended(attempt);
      }
    }
  }

  /** The exactly-once marks of these messages (see QueuedMessage.once): each must not exist yet. */
  private onceMarks(messages: readonly QueuedMessage[]) {
    return messages.flatMap(({ once }) =>
      once
        ? [
            {
              Put: {
                TableName: this.tables.sessions,
                // Kept a day at most (TTL), and no longer than the publisher's session.
                Item: { clientId: once.clientId, sk: ONCE_PREFIX + once.key, expiresAt: Math.ceil(this.now() / 1000) + TTL_GRACE_SECONDS },
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
          ]
        : [],
    );
  }

  private outgoingItem(message: OutgoingMessage): Item {
    return { ...messageItem(message), packetId: message.packetId, sk: outKey(message.packetId), state: 'publish', sentSeq: this.sequence() };
  }

  /** The session item as it is now (strongly consistent). */
  private async readSession(clientId: string): Promise<Item | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tables.sessions, Key: { clientId, sk: SESSION_SK }, ConsistentRead: true, ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('read', out.ConsumedCapacity);
    return out.Item;
  }

  async releaseHold(clientId: string, connectionId: string, hold: string, receiveMaximum: number): Promise<'released' | 'queued' | 'not-held'> {
    const counts = countsInFlight(receiveMaximum);
    // Only with nothing queued (or no room for it: the next acknowledgement drains): what was
    // queued meanwhile goes first, from this holder.
    const released = await this.conditional(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: SESSION_SK },
        UpdateExpression: 'REMOVE heldBy, heldUntil',
        ConditionExpression: `connectionId = :c AND heldBy = :hold AND (attribute_not_exists(queued) OR queued <= :zero${counts ? ' OR inflight >= :rm' : ''})`,
        ExpressionAttributeValues: { ':c': connectionId, ':hold': hold, ':zero': 0, ...(counts ? { ':rm': receiveMaximum } : {}) },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    if (released) return 'released';
    const session = await this.readSession(clientId);
    return session?.connectionId === connectionId && session.heldBy === hold ? 'queued' : 'not-held';
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

  async receiveQos2(clientId: string, packetId: number): Promise<QoS2Receipt> {
    const received = { clientId, sk: IN_PREFIX + packetId, receiptId: `${packetId}#${this.sequence()}`, receivedAt: this.now() };
    const out = await this.unlessConditionFails(
      new PutCommand({ TableName: this.tables.sessions, Item: received, ConditionExpression: 'attribute_not_exists(sk)', ReturnConsumedCapacity: CAPACITY }),
    );
    if (out) return { clientId, id: received.receiptId, routed: false };
    const known = await this.client.send(
      new GetCommand({ TableName: this.tables.sessions, Key: { clientId, sk: received.sk }, ConsistentRead: true, ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('read', known.ConsumedCapacity);
    // Released meanwhile (a PUBREL overtook this resend): remembered again as new.
    if (!known.Item) return this.receiveQos2(clientId, packetId);
    return { clientId, id: String(known.Item.receiptId ?? packetId), routed: known.Item.routed === true };
  }

  async markQos2Routed(clientId: string, packetId: number): Promise<void> {
    await this.conditional(
      new UpdateCommand({
        TableName: this.tables.sessions,
        Key: { clientId, sk: IN_PREFIX + packetId },
        UpdateExpression: 'SET routed = :yes',
        ConditionExpression: 'attribute_exists(sk)',
        ExpressionAttributeValues: { ':yes': true },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
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
    const written = await this.transact([
      {
        ConditionCheck: {
          TableName: this.tables.sessions,
          Key: { clientId, sk: SESSION_SK },
          ConditionExpression: 'attribute_exists(clientId) AND attribute_not_exists(connectionId)',
        },
      },
      { Put: { TableName: this.tables.sessions, Item: { clientId, sk: WILL_SK, will: toItemMessage(will), timer: 'will', timerAt: dueAt } } },
    ]);
    return written.ok;
  }

  async cancelWill(clientId: string): Promise<void> {
    await this.deleteExisting(this.tables.sessions, { clientId, sk: WILL_SK });
  }

  async claimDueWills(now: number, limit: number): Promise<DueWill[]> {
    const due = await this.dueTimers('will', now, limit);
    const wills: DueWill[] = [];
    for (const item of due) {
      // Claimed for a lease, not deleted: a publisher that dies leaves it for the next run.
      const claimed = await this.unlessConditionFails(
        new UpdateCommand({
          TableName: this.tables.sessions,
          Key: { clientId: item.clientId as string, sk: WILL_SK },
          UpdateExpression: 'SET claimedAt = :now',
          ConditionExpression: 'timerAt <= :now AND (attribute_not_exists(claimedAt) OR claimedAt < :stale)',
          ExpressionAttributeValues: { ':now': now, ':stale': now - CONNECTION_END_LEASE_MS },
          ReturnValues: 'ALL_NEW',
          ReturnConsumedCapacity: CAPACITY,
        }),
      );
      const will = claimed?.Attributes;
      if (will) wills.push({ clientId: will.clientId as string, will: toWill(will.will as Item), id: String(will.timerAt) });
    }
    return wills;
  }

  async completeWill(clientId: string, id: string): Promise<void> {
    // Only the will that was published: the client may have scheduled a new one since.
    await this.conditionalDelete(this.tables.sessions, { clientId, sk: WILL_SK }, 'timerAt = :t', { ':t': Number(id) });
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

/** A message as its queue or in-flight item: its exactly-once mark is written apart, once. */
function messageItem(message: QueuedMessage): Item {
  const { once: _once, ...rest } = message;
  return toItemMessage(rest) as Item;
}

/**
 * Deliveries may start on `connectionId`: it holds the session and nobody holds the session's
 * deliveries back (a CONNECT until its client has CONNACK and what was in flight, a drain while it
 * sends the queue), or the hold has lapsed, or it is `hold`, the caller's own.
 */
function canStart(session: Item, connectionId: string, now: number, hold?: string): boolean {
  if (session.connectionId !== connectionId) return false;
  const held = typeof session.heldUntil === 'number' && session.heldUntil >= now;
  return !held || (hold !== undefined && session.heldBy === hold);
}

/** The session's connection is still in its CONNECT: it takes no deliveries yet, QoS 0 included [MQTT-3.2.0-1]. */
function connecting(session: Item, now: number): boolean {
  return typeof session.heldBy === 'string' && session.heldBy.startsWith('connect:') && typeof session.heldUntil === 'number' && session.heldUntil >= now;
}

/** A transaction lost to a concurrent one: wait a little (jittered) before reading again, within bounds. */
async function contended(attempt: number): Promise<void> {
  if (attempt >= MAX_CONTENDED_ATTEMPTS) throw new StoreUnavailableError('busy', `gave up after ${attempt} contended transactions`);
  await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** Math.min(attempt, 6))));
}

function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * 2 ** attempt)));
}
