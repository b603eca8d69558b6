/**
 * The items QoS 1/2 deliveries write and read, and what they read the session item by: packet ids
 * free to claim, in-flight records, exactly-once marks (dynamo-deliveries.ts uses them).
 */
import type { QueueBound, QueuedMessage, QueueingSession } from '../broker/ports';
import type { DynamoTable, Item, TransactItem } from './dynamo-table';
import { blockStart, claimedRun, claimSpan, idsInFlight } from './in-flight-blocks';
import { MAX_IN_FLIGHT_IDS, ONCE_PREFIX, packetIdOf, sessionKey, TTL_GRACE_SECONDS } from './session-items';

/**
 * [MQTT-2.2.1-3] a packet id is not reused while its message is in flight. Only after the
 * session's counter has gone past 65535 can a claimed id still be in flight (a message left
 * unacknowledged across 65535 later ones): then the claimed ids' blocks are read first (one
 * BatchGetItem per 100), and each id found is replaced by a further one from the counter (its room
 * under the Receive Maximum was claimed already).
 */
export async function skipInFlight(table: DynamoTable, clientId: string, claimed: readonly number[], counter: number): Promise<number[]> {
  if (counter <= MAX_IN_FLIGHT_IDS) return [...claimed];
  let ids = [...claimed];
  for (let round = 0; ; round++) {
    const found = await idsInFlight(table, clientId, ids);
    if (found.size === 0) return ids;
    if (round >= MAX_IN_FLIGHT_IDS) throw new Error('no packet id free');
    const span = claimSpan(found.size);
    const more = await table.updateIf({
      Key: sessionKey(clientId),
      UpdateExpression: 'ADD nextPacketId :k',
      ConditionExpression: 'attribute_exists(clientId)',
      ExpressionAttributeValues: { ':k': span },
      ReturnValues: 'UPDATED_NEW',
    });
    if (!more) throw new Error('the session ended while its deliveries were recorded');
    const fresh = claimedIds(Number(more.attributes?.nextPacketId), found.size);
    ids = ids.map((id) => (found.has(id) ? fresh.shift()! : id));
  }
}

/**
 * `n` packet ids after the counter's value `counter` (a run starting a block, see claimSpan),
 * skipping any still in flight (see skipInFlight); `first`: the counter value of the first,
 * `last`: the counter's value after them.
 */
export async function freeIdsAfter(table: DynamoTable, clientId: string, counter: number, n: number): Promise<{ ids: number[]; first: number; last: number }> {
  const first = n <= 1 ? counter + 1 : blockStart(counter + 1);
  if (first + n - 1 <= MAX_IN_FLIGHT_IDS) return { ids: idsBelow(first + n - 1, n), first, last: first + n - 1 };
  const ids: number[] = [];
  let last = counter;
  while (ids.length < n) {
    if (last - counter > MAX_IN_FLIGHT_IDS) throw new Error('no packet id free');
    const candidates = idsBelow(last + n - ids.length, n - ids.length);
    last += candidates.length;
    const found = await idsInFlight(table, clientId, candidates);
    ids.push(...candidates.filter((id) => !found.has(id)));
  }
  return { ids, first: counter + 1, last };
}

/** The packet ids of a claim of `n` that left the counter at `counter` (see claimedRun). */
export function claimedIds(counter: number, n: number): number[] {
  return claimedRun(counter, n).map(packetIdOf);
}

/** The exactly-once marks of these messages (see QueuedMessage.once): each must not exist yet. */
export function onceMarks(messages: readonly QueuedMessage[], now: number): TransactItem[] {
  return messages.flatMap(({ once }) =>
    once
      ? [
          {
            Put: {
              // Kept a day at most (TTL), and no longer than the publisher's session.
              Item: { clientId: once.clientId, sk: ONCE_PREFIX + once.key, expiresAt: Math.ceil(now / 1000) + TTL_GRACE_SECONDS },
              ConditionExpression: 'attribute_not_exists(sk)',
            },
          },
        ]
      : [],
  );
}

/** The `n` packet ids the counter's last `n` values stand for, oldest first. */
export function idsBelow(counter: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => packetIdOf(counter - n + 1 + i));
}

/** A session item past the expiry its timer set (while its client is away). */
export function isExpiredSession(session: Item, now: number): boolean {
  return typeof session.timerAt === 'number' && session.timerAt <= now;
}

/** What the session item says a queueing handler needs to know. */
export function queueingSession(item: Item): QueueingSession {
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
export function canStart(session: Item, connectionId: string, now: number, hold?: string): boolean {
  if (session.connectionId !== connectionId) return false;
  const held = typeof session.heldUntil === 'number' && session.heldUntil >= now;
  return !held || (hold !== undefined && session.heldBy === hold);
}

/** What a queued message counts against its session's byte bound: its topic and payload. */
export function queuedSize(message: QueuedMessage): number {
  return Buffer.byteLength(message.topic) + message.payload.length;
}

/**
 * The session update that counts a message into its queue (`ADD queued :one, queuedBytes :size`),
 * conditioned on the session existing, not past its expiry, and the queue's bounds; and whether
 * a session as read is full for this message.
 */
export function queueCount(message: QueuedMessage, bound: QueueBound | undefined, now: number) {
  const size = queuedSize(message);
  const messages = bound !== undefined && Number.isFinite(bound.messages) ? bound.messages : undefined;
  const bytes = bound?.bytes !== undefined && Number.isFinite(bound.bytes) ? bound.bytes : undefined;
  const conditions = ['attribute_exists(clientId) AND (attribute_not_exists(timerAt) OR timerAt > :now)'];
  if (messages !== undefined) conditions.push('(attribute_not_exists(queued) OR queued < :max)');
  // The bytes queued already leave room for this one (one larger than the whole bound never fits).
  if (bytes !== undefined) conditions.push('(attribute_not_exists(queuedBytes) OR queuedBytes <= :room)');
  return {
    size,
    fits: bytes === undefined || size <= bytes,
    update: {
      UpdateExpression: 'ADD queued :one, queuedBytes :size',
      ConditionExpression: conditions.join(' AND '),
      ExpressionAttributeValues: {
        ':one': 1,
        ':size': size,
        ':now': now,
        ...(messages !== undefined ? { ':max': messages } : {}),
        ...(bytes !== undefined ? { ':room': bytes - size } : {}),
      },
    },
    full: (session: Item): boolean =>
      (messages !== undefined && Number(session.queued ?? 0) >= messages) || (bytes !== undefined && Number(session.queuedBytes ?? 0) + size > bytes),
  };
}
