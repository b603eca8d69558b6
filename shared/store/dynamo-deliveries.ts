/**
 * QoS 1 and 2 deliveries in DynamoDB, in the client's session partition: messages in flight
 * (`out#<packet id>`), the queue (`q#<sequence>`), the session item's counters (`nextPacketId`,
 * `inflight`, `queued`) and hold (`heldBy`, `heldUntil`), and exactly-once marks (`d#<key>`) in
 * the publisher's partition.
 *
 * A message goes in flight in one transaction: its packet id (the session's counter), the count
 * of messages in flight (under the client's Receive Maximum), the message itself under `out#<id>`
 * and, for a QoS 2 delivery of a QoS 2 PUBLISH, its exactly-once mark. A handler that dies before
 * it leaves nothing; after it, the message is in flight and any later CONNECT of the client finds
 * it to resend. The counter is read first and the transaction is conditioned on it, so concurrent
 * handlers never hand out the same packet id.
 */
import type { ClaimedMessages, DeliveryHold, DeliveryStart, DeliveryStore, EnqueueResult, OutgoingMessage, QueueingSession, QueuedMessage } from '../broker/ports';
import { afterContention, type DynamoTable, type Item, type TransactItem } from './dynamo-table';
import { messageItem, toQueued } from './message-items';
import {
  countsInFlight,
  MAX_IN_FLIGHT_IDS,
  ONCE_PREFIX,
  OUT_PREFIX,
  outKey,
  packetIdOf,
  QUEUE_PREFIX,
  sessionKey,
  TTL_GRACE_SECONDS,
  type SequenceGenerator,
} from './session-items';

/** A transaction holds 100 items: the session, and per message its record and at most one mark. */
const MESSAGES_PER_TRANSACTION = 49;

export class DynamoDeliveryStore implements DeliveryStore {
  constructor(
    private readonly table: DynamoTable,
    private readonly sequence: SequenceGenerator,
    private readonly now: () => number,
  ) {}

  async startDeliveries(clientId: string, connectionId: string, receiveMaximum: number, messages: readonly QueuedMessage[]): Promise<DeliveryStart[]> {
    const answers: DeliveryStart[] = messages.map(() => 'queue');
    let pending = messages.map((_, i) => i);
    for (let attempt = 0; pending.length > 0; attempt++) {
      const session = await this.table.get(sessionKey(clientId));
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
        await afterContention(attempt);
      }
    }
    return answers;
  }

  async enqueue(message: QueuedMessage, maxQueued?: number): Promise<EnqueueResult> {
    const { clientId } = message;
    // The queue's bound is a condition on the session's own count, in the same transaction.
    const bounded = maxQueued !== undefined && Number.isFinite(maxQueued);
    const written = await this.table.transact([
      {
        Update: {
          Key: sessionKey(clientId),
          UpdateExpression: 'ADD queued :one',
          ConditionExpression: `attribute_exists(clientId) AND (attribute_not_exists(timerAt) OR timerAt > :now)${bounded ? ' AND (attribute_not_exists(queued) OR queued < :max)' : ''}`,
          ExpressionAttributeValues: { ':one': 1, ':now': this.now(), ...(bounded ? { ':max': maxQueued } : {}) },
        },
      },
      { Put: { Item: { ...messageItem(message), sk: QUEUE_PREFIX + this.sequence.next() } } },
      ...this.onceMarks([message]),
    ]);
    // The session is gone (or ended), its queue is full, or the mark says it was delivered before: nothing to keep.
    if (!written.ok) {
      if (!bounded || !written.failed[0]) return { queued: false };
      const session = await this.table.get(sessionKey(clientId));
      return session && Number(session.queued ?? 0) >= maxQueued ? { queued: false, full: true } : { queued: false };
    }
    // The session as the queue left it: the broker decides by it whether to drain now.
    const session = await this.table.get(sessionKey(clientId));
    return session ? { queued: true, session: queueingSession(session) } : { queued: true };
  }

  async claimQueued(clientId: string, connectionId: string, receiveMaximum: number, hold: DeliveryHold, batch: number): Promise<ClaimedMessages> {
    const perRound = Math.max(1, Math.min(batch, MESSAGES_PER_TRANSACTION));
    const messages: OutgoingMessage[] = [];
    for (let attempt = 0; ; attempt++) {
      const session = await this.table.get(sessionKey(clientId));
      // Another drain holds the session: it sends what is queued, in order, before letting go.
      if (!session || !canStart(session, connectionId, this.now(), hold.token)) return { messages, more: Number(session?.queued ?? 0) > 0 };
      const room = countsInFlight(receiveMaximum) ? receiveMaximum - Number(session.inflight ?? 0) : perRound;
      if (room <= 0) return { messages, more: Number(session.queued ?? 0) > 0 };
      const items = await this.table.query({
        KeyConditionExpression: 'clientId = :c AND begins_with(sk, :q)',
        ExpressionAttributeValues: { ':c': clientId, ':q': QUEUE_PREFIX },
        Limit: Math.min(room, perRound),
      });
      if (items.length === 0) return { messages, more: false };
      const outcome = await this.recordInFlight(clientId, connectionId, receiveMaximum, session, items.map(toQueued), items, hold);
      if (outcome.ok) messages.push(...outcome.claimed);
      // Another drain took some of them, or the counter moved: look again.
      else await afterContention(attempt);
    }
  }

  async releaseHold(clientId: string, connectionId: string, hold: string, receiveMaximum: number): Promise<'released' | 'queued' | 'not-held'> {
    const counts = countsInFlight(receiveMaximum);
    // Only with nothing queued (or no room for it: the next acknowledgement drains): what was
    // queued meanwhile goes first, from this holder.
    const released = await this.table.updateIf({
      Key: sessionKey(clientId),
      UpdateExpression: 'REMOVE heldBy, heldUntil',
      ConditionExpression: `connectionId = :c AND heldBy = :hold AND (attribute_not_exists(queued) OR queued <= :zero${counts ? ' OR inflight >= :rm' : ''})`,
      ExpressionAttributeValues: { ':c': connectionId, ':hold': hold, ':zero': 0, ...(counts ? { ':rm': receiveMaximum } : {}) },
    });
    if (released) return 'released';
    const session = await this.table.get(sessionKey(clientId));
    return session?.connectionId === connectionId && session.heldBy === hold ? 'queued' : 'not-held';
  }

  async setInFlight(clientId: string, count: number): Promise<void> {
    await this.table.updateIf({
      Key: sessionKey(clientId),
      UpdateExpression: 'SET inflight = :n',
      ConditionExpression: 'attribute_exists(clientId)',
      ExpressionAttributeValues: { ':n': count },
    });
  }

  async listOutgoing(clientId: string): Promise<OutgoingMessage[]> {
    const items = await this.table.queryAll({
      KeyConditionExpression: 'clientId = :c AND begins_with(sk, :o)',
      ExpressionAttributeValues: { ':c': clientId, ':o': OUT_PREFIX },
    });
    return items
      .sort((a, b) => String(a.sentSeq ?? '').localeCompare(String(b.sentSeq ?? '')))
      .map((item) => ({ ...toQueued(item), packetId: Number(item.packetId), state: item.state === 'pubrel' ? 'pubrel' : 'publish' }));
  }

  async releaseOutgoing(clientId: string, packetId: number): Promise<boolean> {
    const released = await this.table.updateIf({
      Key: { clientId, sk: outKey(packetId) },
      UpdateExpression: 'SET #s = :pubrel REMOVE payload',
      ConditionExpression: 'attribute_exists(sk)',
      ExpressionAttributeNames: { '#s': 'state' },
      ExpressionAttributeValues: { ':pubrel': 'pubrel' },
    });
    return released !== undefined;
  }

  async completeOutgoing(clientId: string, packetId: number, receiveMaximum: number): Promise<{ found: boolean; queued: boolean }> {
    const found = (await this.table.delete({ Key: { clientId, sk: outKey(packetId) }, ReturnValues: 'ALL_OLD' })) !== undefined;
    // Without a count in flight nothing waits for room: a queue only forms while the client is away.
    if (!found || !countsInFlight(receiveMaximum)) return { found, queued: false };
    const session = await this.table.updateIf({
      Key: sessionKey(clientId),
      UpdateExpression: 'ADD inflight :d0',
      ConditionExpression: 'attribute_exists(clientId)',
      ExpressionAttributeValues: { ':d0': -1 },
      ReturnValues: 'ALL_NEW',
    });
    return { found, queued: Number(session?.attributes?.queued ?? 0) > 0 };
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
    hold?: DeliveryHold,
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
      Key: sessionKey(clientId),
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
        ...(hold ? { ':hold': hold.token, ':until': now + hold.leaseMs } : {}),
        ...(counter === 0 ? {} : { ':counter': counter }),
        ...(counts && live.length > 0 ? { ':n': live.length } : {}),
        ...(counts ? { ':room': receiveMaximum - live.length } : {}),
        ...(fromQueue.length > 0 ? { ':minus': -fromQueue.length } : { ':zero': 0 }),
      },
    };
    const written = await this.table.transact([
      { Update: update },
      ...fromQueue.map((item) => ({ Delete: { Key: { clientId, sk: item.sk }, ConditionExpression: 'attribute_exists(sk)' } })),
      ...outgoing.map((message) => ({ Put: { Item: this.outgoingItem(message) } })),
      ...marks,
    ]);
    if (written.ok) return { ok: true, claimed: outgoing };
    // A mark that exists: that message was delivered before (its index in `messages`).
    const markFailed = written.failed.findIndex((failed, i) => failed && i >= 1 + fromQueue.length + outgoing.length);
    if (markFailed < 0) return { ok: false };
    const marked = messages.flatMap((m, i) => (m.once ? [i] : []));
    return { ok: false, duplicate: marked[markFailed - 1 - fromQueue.length - outgoing.length]! };
  }

  /** The exactly-once marks of these messages (see QueuedMessage.once): each must not exist yet. */
  private onceMarks(messages: readonly QueuedMessage[]): TransactItem[] {
    return messages.flatMap(({ once }) =>
      once
        ? [
            {
              Put: {
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
    return { ...messageItem(message), packetId: message.packetId, sk: outKey(message.packetId), state: 'publish', sentSeq: this.sequence.next() };
  }
}

function queueingSession(item: Item): QueueingSession {
  return {
    ...(typeof item.connectionId === 'string' ? { connectionId: item.connectionId } : {}),
    inFlight: Number(item.inflight ?? 0),
    receiveMaximum: Number(item.receiveMaximum ?? MAX_IN_FLIGHT_IDS),
    ...(typeof item.heldUntil === 'number' ? { heldUntil: item.heldUntil } : {}),
  };
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
