/**
 * Sessions in DynamoDB: the session item (`sk = "session"`) in the client's partition of the
 * Sessions table. Opening, closing and ending a session reach across the partition (its
 * subscriptions, QoS state, queue and will), through the subscription and will adapters, and into
 * its in-flight shards (see outRecordKey) when the session ever claimed packet ids.
 */
import type { CloseSessionOptions, DueWill, OpenSessionRequest, OpenSessionResult, CloseSessionResult, SessionRecord, SessionStore, WillMessage } from '../broker/ports';
import { connectHold } from '../broker/ports';
import type { ProtocolVersion } from '../protocol/codec';
import { connectionItem } from './dynamo-connections';
import type { DynamoSubscriptionStore } from './dynamo-subscriptions';
import type { DynamoTable, Item, TransactItem } from './dynamo-table';
import type { DynamoWillStore } from './dynamo-wills';
import { rateChargeItem, rateChargeUpdate } from './rate-items';
import { countedKeys, countIn, countInAnyway, countOut, countOutUpdate, quotaInSessions as quotaItemKey, quotaKey } from './user-quota';
import { dueTimers, isExpired, timerKey, MAX_IN_FLIGHT_IDS, mayHaveOutRecords, queryOutRecords, SESSION_SK, sessionKey, SUB_PREFIX, TTL_GRACE_SECONDS } from './session-items';

const NEVER_EXPIRES = 0xffffffff;

/** The adapters a session's end reaches into, and the Connections table (a new session is written with its connection's record). */
export interface SessionParts {
  readonly subscriptions: DynamoSubscriptionStore;
  readonly wills: DynamoWillStore;
  readonly connections: DynamoTable;
  /** The Security table, where a CONNECT's connect rate is counted (rate-items.ts). */
  readonly security: DynamoTable;
}

/** At most this many items of a session (its in-flight records included) are deleted in its closing transaction; more go the long way. */
const CLOSING_TRANSACTION_ITEMS = 25;

export class DynamoSessionStore implements SessionStore {
  constructor(
    private readonly table: DynamoTable,
    private readonly parts: SessionParts,
    private readonly now: () => number,
  ) {}

  async openSession(request: OpenSessionRequest): Promise<OpenSessionResult | 'owned-by-another' | 'quota-exceeded' | 'rate-exceeded'> {
    // Where the owner's sessions are counted (MQTT_MAX_SESSIONS_PER_USER), if they are.
    const quota = request.sessionsPerUser === undefined ? undefined : quotaKey('sessions', sessionOwner(request.owner), request.clientId, request.sessionsPerUser);
    // No session item: none exists (a session's item is the last of its items to go, see
    // deleteSessionState and endExpiredSessions), so there is nothing to claim, wipe, settle or
    // hold back. The new session and the connection's record are written in one call.
    if (request.connection) {
      const created = await this.createSession(request, request.connection, quota);
      if (created === 'created') return { sessionPresent: false, created: true };
      if (created !== 'exists') return created === 'quota' ? 'quota-exceeded' : 'rate-exceeded';
    }
    // The long way: the connect rate counted first, on its own (nothing else touched if refused).
    if (request.connectRate && (await this.parts.security.updateIf(rateChargeUpdate(request.connectRate))) === undefined) return 'rate-exceeded';
    const now = this.now();
    // Claim the session first: the old item tells who held it, even when it is about to be wiped.
    // Only its owner claims a live session: another identity's claim changes nothing (no extra call:
    // the condition rides on the claim). A session that has expired belongs to nobody any more.
    const claimed = await this.table.updateIf({
      Key: sessionKey(request.clientId),
      UpdateExpression: [
        'SET #owner = :owner, connectionId = :c, protocolVersion = :v, connectedAt = :t, receiveMaximum = :r, topicAliasMaximum = :a, endsWithConnection = :e',
        // Whom this claim takes the session from: if this CONNECT dies before closing it, the next claim closes it.
        ', takenOver = if_not_exists(connectionId, :none), takenOverVersion = if_not_exists(protocolVersion, :v)',
        request.maximumPacketSize === undefined ? '' : ', maximumPacketSize = :m',
        quota === undefined ? '' : ', quota = :quota',
        // New deliveries wait (queued) until this CONNECT has answered and resent what was in flight.
        ', heldBy = :hold, heldUntil = :until',
        // A sweep ending the expired session meanwhile leaves the session item to this claim.
        ' REMOVE expiresAt, #timer, timerAt, endingAt',
        request.maximumPacketSize === undefined ? ', maximumPacketSize' : '',
        // A clean start begins with nothing in flight and nothing queued.
        request.cleanStart ? ', inflight, queued, queuedBytes' : '',
      ].join(''),
      ConditionExpression:
        'attribute_not_exists(#owner) OR #owner = :owner OR (#timer IN (:expiry, :bareExpiry) AND timerAt <= :nowMs) OR (attribute_not_exists(#timer) AND expiresAt <= :nowS)',
      ExpressionAttributeNames: { '#timer': 'timer', '#owner': 'owner' },
      ExpressionAttributeValues: {
        ':owner': sessionOwner(request.owner),
        ':expiry': timerKey('expiry', request.clientId),
        // as written before the timer index had shards
        ':bareExpiry': 'expiry',
        ':nowMs': now,
        ':nowS': Math.floor(now / 1000),
        ':c': request.connectionId,
        ':v': request.protocolVersion,
        ':t': this.now(),
        ':r': request.receiveMaximum,
        ':a': request.topicAliasMaximum,
        ':e': request.endsWithConnection ?? false,
        ':none': '',
        ':hold': connectHold(request.connectionId),
        ':until': this.now() + request.holdMs,
        ...(request.maximumPacketSize === undefined ? {} : { ':m': request.maximumPacketSize }),
        ...(quota === undefined ? {} : { ':quota': quota }),
      },
      ReturnValues: 'ALL_OLD',
    });
    if (claimed === undefined) return 'owned-by-another';
    const old = claimed.attributes;
    if (quota !== undefined && !(await this.countClaimed(request, old, quota))) return 'quota-exceeded';
    const alive = old !== undefined && !isExpired(old, this.now());
    // A session bound to its connection ends with it, also when this connection takes it over
    // (MQTT 5.0 3.1.4; 3.1.1 [MQTT-3.1.2-6]: its state is never reused).
    const resumable = alive && old.endsWithConnection !== true;
    // Clean Start, or a session that expired but TTL has not deleted yet, or one that ends with
    // its connection: nothing of it survives.
    let endedSessionWill: WillMessage | undefined;
    if (request.cleanStart || (old !== undefined && !resumable)) {
      // Claimed before the wipe, so the session's pending will is published, not lost.
      if (old !== undefined) endedSessionWill = (await this.parts.wills.takeWill(request.clientId))?.will;
      await this.deleteSessionState(request.clientId, { keepSessionItem: true });
      if (!request.cleanStart) await this.table.update({ Key: sessionKey(request.clientId), UpdateExpression: 'REMOVE inflight, queued, queuedBytes' });
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

  /**
   * The session item of a session that does not exist yet, and the connection's record, in one
   * transaction, counted in its owner's sessions if they are counted: 'exists' if a session item
   * exists, 'quota' if the owner's count is full.
   */
  private async createSession(request: OpenSessionRequest, connection: Parameters<typeof connectionItem>[0], quota: string | undefined): Promise<'created' | 'exists' | 'quota' | 'rate'> {
    // Sent with the other clean starts of the moment where it can be (a listener batch's CONNECTs),
    // with the same outcome as alone; the keys name what it touches.
    const touches = [
      `session\u0000${request.clientId}`,
      `connection\u0000${connection.connectionId}`,
      ...(quota === undefined ? [] : [`quota\u0000${quota}`]),
      ...(request.connectRate ? [`rate\u0000${request.connectRate.key}\u0000${request.connectRate.windowStart}`] : []),
    ];
    const created = await this.table.transactCombined([
      {
        Put: {
          Item: {
            ...sessionKey(request.clientId),
            owner: sessionOwner(request.owner),
            connectionId: request.connectionId,
            protocolVersion: request.protocolVersion,
            connectedAt: this.now(),
            receiveMaximum: request.receiveMaximum,
            topicAliasMaximum: request.topicAliasMaximum,
            endsWithConnection: request.endsWithConnection ?? false,
            takenOver: '',
            takenOverVersion: request.protocolVersion,
            ...(request.maximumPacketSize === undefined ? {} : { maximumPacketSize: request.maximumPacketSize }),
            ...(quota === undefined ? {} : { quota }),
          },
          ConditionExpression: 'attribute_not_exists(sk)',
        },
      },
      { Put: { TableName: this.parts.connections.name, Item: connectionItem(connection) } },
      ...(quota === undefined ? [] : [countIn(quotaItemKey, quota, request.sessionsPerUser!)]),
      ...(request.connectRate ? [rateChargeItem(this.parts.security.name, request.connectRate)] : []),
    ], touches);
    if (created.ok) return 'created';
    // A session that exists goes the long way, which counts the rate again on its own.
    if (created.failed[0]) return 'exists';
    if (quota !== undefined && created.failed[2]) return 'quota';
    return created.failed[created.failed.length - 1] && request.connectRate ? 'rate' : 'exists';
  }

  /**
   * A claim that made the session its owner's (a new session item, or an expired one of another
   * owner) counts it in the owner's sessions, on condition of room; without room the claim is
   * undone and false returned: a new item is deleted, an expired one given back to its owner as
   * it was, due to end (the sweeper ends it, its will published). A session the owner had
   * already, counted elsewhere (before the bound changed, or before sessions were counted),
   * moves to its new shard whatever it holds.
   */
  private async countClaimed(request: OpenSessionRequest, old: Item | undefined, quota: string): Promise<boolean> {
    const owner = sessionOwner(request.owner);
    const counted = typeof old?.quota === 'string' ? old.quota : undefined;
    const before = counted !== undefined ? [countOut(quotaItemKey, counted)] : [];
    if (old !== undefined && old.owner === owner) {
      if (counted !== quota) await this.table.transact([...before, countInAnyway(quotaItemKey, quota)]);
      return true;
    }
    const moved = await this.table.transact([...before, countIn(quotaItemKey, quota, request.sessionsPerUser!)]);
    if (moved.ok) return true;
    const mine = { ConditionExpression: 'connectionId = :c', ExpressionAttributeValues: { ':c': request.connectionId } };
    if (old === undefined) {
      await this.table.deleteIf({ Key: sessionKey(request.clientId), ...mine });
      return false;
    }
    await this.table.updateIf({
      Key: sessionKey(request.clientId),
      UpdateExpression: counted === undefined
        ? 'SET #owner = :owner, #timer = :expiry, timerAt = :now REMOVE connectionId, heldBy, heldUntil, quota'
        : 'SET #owner = :owner, #timer = :expiry, timerAt = :now, quota = :old REMOVE connectionId, heldBy, heldUntil',
      ...mine,
      ExpressionAttributeNames: { '#owner': 'owner', '#timer': 'timer' },
      ExpressionAttributeValues: {
        ...mine.ExpressionAttributeValues,
        ':owner': old.owner ?? '',
        ':expiry': timerKey('expiry', request.clientId),
        ':now': this.now(),
        ...(counted === undefined ? {} : { ':old': counted }),
      },
    });
    return false;
  }

  async closeSession(clientId: string, connectionId: string, endSession: boolean, expiryInterval: number, options: CloseSessionOptions = {}): Promise<CloseSessionResult> {
    const closed = endSession ? await this.endSessionAtOnce(clientId, connectionId, options) : await this.detachAtOnce(clientId, connectionId, expiryInterval, options);
    if (closed !== undefined) return closed;
    const result = await this.closeSessionStepByStep(clientId, connectionId, endSession, expiryInterval);
    if (options.forgetConnection) await this.parts.connections.delete({ Key: { connectionId } });
    return result;
  }

  /**
   * A session that ends with its connection, in one transaction when it is small: the session item
   * (on condition that this connection still holds it), its other items and the connection's
   * record (if asked) all go together, after the routes of its subscriptions. Its in-flight shards
   * are queried only if it ever claimed packet ids. Undefined when it cannot be done so (the
   * session is not this connection's, or too large): the long way then.
   */
  private async endSessionAtOnce(clientId: string, connectionId: string, options: CloseSessionOptions): Promise<CloseSessionResult | undefined> {
    const all = await this.table.queryAll({
      KeyConditionExpression: 'clientId = :c',
      ExpressionAttributeValues: { ':c': clientId },
      ProjectionExpression: 'clientId, sk, connectionId, nextPacketId, quota',
    });
    const session = all.find((item) => item.sk === SESSION_SK);
    if (session?.connectionId !== connectionId) return undefined;
    const records = mayHaveOutRecords(session) ? await queryOutRecords(this.table, clientId, 'clientId, sk') : [];
    const others = [...all.filter((item) => item.sk !== SESSION_SK), ...records];
    if (others.length > CLOSING_TRANSACTION_ITEMS) return undefined;
    const filters = others.map((item) => item.sk as string).filter((sk) => sk.startsWith(SUB_PREFIX)).map((sk) => sk.slice(SUB_PREFIX.length));
    await this.parts.subscriptions.removeRoutes(clientId, filters);
    const ended = await this.table.transact([
      { Delete: { Key: sessionKey(clientId), ConditionExpression: 'connectionId = :c', ExpressionAttributeValues: { ':c': connectionId } } },
      ...others.map((item) => ({ Delete: { Key: { clientId: item.clientId, sk: item.sk } } })),
      ...(options.forgetConnection ? [{ Delete: { TableName: this.parts.connections.name, Key: { connectionId } } }] : []),
      ...countedOut(session, ...others),
    ]);
    // Taken over meanwhile: the long way tells.
    return ended.ok ? 'closed' : undefined;
  }

  /** A session that outlives its connection, detached in one transaction with the deletion of the connection's record (if asked); undefined if not this connection's. */
  private async detachAtOnce(clientId: string, connectionId: string, expiryInterval: number, options: CloseSessionOptions): Promise<CloseSessionResult | undefined> {
    if (!options.forgetConnection) return undefined;
    const detached = await this.table.transact([
      { Update: this.detachment(clientId, connectionId, expiryInterval) },
      { Delete: { TableName: this.parts.connections.name, Key: { connectionId } } },
    ]);
    return detached.ok ? 'closed' : undefined;
  }

  /** The update that detaches `connectionId` from the session, on condition it holds it. */
  private detachment(clientId: string, connectionId: string, expiryInterval: number) {
    const expires = expiryInterval !== NEVER_EXPIRES;
    const expiresAtMs = this.now() + expiryInterval * 1000;
    return {
      Key: sessionKey(clientId),
      UpdateExpression: expires
        ? 'REMOVE connectionId, heldBy, heldUntil SET closedConnectionId = :c, expiresAt = :e, #timer = :expiry, timerAt = :at'
        : 'REMOVE connectionId, heldBy, heldUntil SET closedConnectionId = :c',
      ConditionExpression: 'connectionId = :c',
      ...(expires ? { ExpressionAttributeNames: { '#timer': 'timer' } } : {}),
      ExpressionAttributeValues: {
        ':c': connectionId,
        // The sweeper ends the session at `timerAt` (its routes and queue too); TTL, a day later, only backs it up.
        ...(expires ? { ':e': Math.ceil(expiresAtMs / 1000) + TTL_GRACE_SECONDS, ':expiry': timerKey('expiry', clientId), ':at': expiresAtMs } : {}),
      },
    };
  }

  private async closeSessionStepByStep(clientId: string, connectionId: string, endSession: boolean, expiryInterval: number): Promise<CloseSessionResult> {
    // Only the connection that holds the session may detach it: after a takeover it is not ours.
    const detached = await this.table.updateIf(this.detachment(clientId, connectionId, endSession ? NEVER_EXPIRES : expiryInterval));
    // Detached by this connection's own earlier end (which died half way): what it did, done again.
    if (!detached && !(await this.closedBy(clientId, connectionId))) return 'taken-over';
    if (endSession) await this.deleteSessionState(clientId);
    return 'closed';
  }

  async endExpiredSessions(now: number, limit: number, willLeaseMs: number): Promise<{ ended: number; wills: DueWill[] }> {
    const due = await dueTimers(this.table, 'expiry', now, limit);
    let ended = 0;
    const wills: DueWill[] = [];
    for (const item of due) {
      const clientId = item.clientId as string;
      // Still expired and still without a connection (a client that came back keeps its session),
      // and no other sweep at it (or one that died, its lease passed). The item stays, and in the
      // timer index, until the session's other items are gone: a sweep that dies half way is redone.
      const claimed = await this.table.updateIf({
        Key: sessionKey(clientId),
        UpdateExpression: 'SET endingAt = :now',
        ConditionExpression: 'attribute_exists(sk) AND attribute_not_exists(connectionId) AND timerAt <= :now AND (attribute_not_exists(endingAt) OR endingAt < :stale)',
        ExpressionAttributeValues: { ':now': now, ':stale': now - willLeaseMs },
      });
      if (!claimed) continue;
      // A delayed will still pending is published now, as its session ends [MQTT-3.1.2-8] (unless
      // claimDueWills has it already: its due time can fall a moment after the session's end).
      const will = await this.parts.wills.takeWill(clientId, now - willLeaseMs);
      if (will) wills.push(will);
      // The session item last, unless a CONNECT claimed it meanwhile (the claim removes endingAt).
      await this.deleteSessionState(clientId, { sessionCondition: { expression: 'attribute_not_exists(connectionId) AND endingAt = :ending', values: { ':ending': now } } });
      ended++;
    }
    return { ended, wills };
  }

  async getSessions(clientIds: readonly string[]): Promise<Map<string, SessionRecord>> {
    const items = await this.table.batchGet([...new Set(clientIds)].map(sessionKey));
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

  /** Whether the session was last detached by `connectionId` (or has ended altogether) and no connection holds it now. */
  private async closedBy(clientId: string, connectionId: string): Promise<boolean> {
    const session = await this.table.get(sessionKey(clientId));
    return session === undefined || (session.connectionId === undefined && session.closedConnectionId === connectionId);
  }

  /**
   * Everything in the client's partition and its in-flight shards, and its entries in the routing
   * index. The session item goes last, on condition that no connection holds it (or
   * `sessionCondition`): a partition with no session item has nothing else in it (nor do its
   * shards), which openSession relies on. The shards are queried only if the session item shows a
   * claim of packet ids (no session item: nothing was ever claimed that is not deleted already).
   */
  private async deleteSessionState(
    clientId: string,
    options: { keepSessionItem?: boolean; sessionCondition?: { expression: string; values: Item } } = {},
  ): Promise<void> {
    const all = await this.table.queryAll({
      KeyConditionExpression: 'clientId = :c',
      ExpressionAttributeValues: { ':c': clientId },
      ProjectionExpression: 'clientId, sk, nextPacketId, quota',
    });
    const session = all.find((item) => item.sk === SESSION_SK);
    const items = all.filter((item) => item.sk !== SESSION_SK);
    const records = mayHaveOutRecords(session) ? await queryOutRecords(this.table, clientId, 'clientId, sk') : [];
    const filters = items.map((item) => item.sk as string).filter((sk) => sk.startsWith(SUB_PREFIX)).map((sk) => sk.slice(SUB_PREFIX.length));
    await this.parts.subscriptions.removeRoutes(clientId, filters);
    await this.table.batchDelete([...items, ...records].map((item) => ({ clientId: item.clientId, sk: item.sk })));
    // Its subscriptions out of their owner's count once they are gone: one that dies in between
    // leaves them counted (a redo finds them gone), never counted out while they exist.
    await Promise.all([...countedKeys(items)].map(([key, n]) => this.table.update(countOutUpdate(quotaItemKey, key, n))));
    if (options.keepSessionItem || session === undefined) return;
    const condition = options.sessionCondition ?? { expression: 'attribute_not_exists(connectionId)', values: {} };
    const deletion = {
      Key: sessionKey(clientId),
      ConditionExpression: condition.expression,
      ...(Object.keys(condition.values).length > 0 ? { ExpressionAttributeValues: condition.values } : {}),
    };
    // Counted out of its owner's sessions in the same write that ends it.
    const out = countedOut(session);
    if (out.length > 0) await this.table.transact([{ Delete: deletion }, ...out]);
    else await this.table.deleteIf(deletion);
  }
}

/**
 * Who owns a session: the user name of the identity that created it; '' for an anonymous one.
 * Anonymous clients cannot be told apart, so one can take over another's session (as before).
 */
function sessionOwner(username: string | undefined): string {
  return username ?? '';
}

/** The counts of the session item and its subscriptions in their owner's, to be taken out as they go; none for those not counted. */
function countedOut(...items: Array<Item | undefined>): TransactItem[] {
  return [...countedKeys(items.filter((item) => item !== undefined))].map(([key, n]) => countOut(quotaItemKey, key, n));
}

/** The session's connection is still in its CONNECT: it takes no deliveries yet, QoS 0 included [MQTT-3.2.0-1]. */
function connecting(session: Item, now: number): boolean {
  return typeof session.heldBy === 'string' && session.heldBy.startsWith('connect:') && typeof session.heldUntil === 'number' && session.heldUntil >= now;
}
