/**
 * QoS 1 and 2 deliveries in DynamoDB: messages in flight (packed into block items of 15 packet
 * ids, `out#<block>` in the client's in-flight shards, see in-flight-blocks.ts), and in the
 * client's session partition the queue (`q#<sequence>`), the session item's counters
 * (`nextPacketId`, `inflight`, `queued`), the time of its last claim (`claimedAt`) and hold
 * (`heldBy`, `heldUntil`), and exactly-once marks (`d#<key>`) in the publisher's partition.
 *
 * A run of messages goes in flight in two steps, both before any is sent. The claim: one
 * single-item update of the session item, no read before it and no transaction, takes the packet
 * ids (`ADD nextPacketId :span`: a run of them at the start of a block in the span below the
 * counter it returns, see claimSpan) and the room under the client's Receive Maximum (`ADD inflight :n`),
 * conditioned on the client still on the connection, nobody holding its deliveries, nothing
 * queued and room; DynamoDB applies updates of one item one after another, so concurrent
 * deliverers never conflict. Then the records, one update per block (a QoS 2 delivery of a QoS 2
 * PUBLISH in a transaction with its exactly-once mark). A handler that dies between the two leaves
 * ids unused and the count too high: the count is set from the records on reconnect
 * (setInFlight), and by a claim that finds the client full once claims have settled
 * (recountInFlight). A drain moves queued messages into flight in transactions (queue items
 * deleted, records written) while it holds the session.
 */
import type { ClaimedMessages, DeliveryHold, DeliveryStart, DeliveryStore, EnqueueResult, OutgoingMessage, QueueBound, QueuedMessage } from '../broker/ports';
import { Completions } from './dynamo-completions';
import { canStart, claimedIds, freeIdsAfter, isExpiredSession, onceMarks, queueCount, queueingSession, skipInFlight } from './delivery-items';
import { afterContention, type DynamoTable, type Item } from './dynamo-table';
import { claimedRun, claimSpan, countRecords, entryTransactItems, releaseEntry, recordsIn, writeEntries, type InFlightEntry } from './in-flight-blocks';
import { messageItem, toQueued } from './message-items';
import { countsInFlight, queryOutRecords, QUEUE_PREFIX, sessionKey, type SequenceGenerator } from './session-items';

/** A drain's transaction holds 100 items: the session, per message its queue item, and the blocks of their records (one per message at most). */
const MESSAGES_PER_TRANSACTION = 49;
/** A transaction holds 100 items: per marked message its mark, and the blocks of their records (one per message at most). */
const MARKED_PER_TRANSACTION = 50;
/**
 * A handler writes its records within a few seconds of its claim (or has died): a session whose
 * last claim is older than this, and whose count says it is full, has its count checked against
 * its records.
 */
const CLAIMS_SETTLE_MS = 30_000;
/** Claims of one startDeliveries refused while the session kept changing (room freed, taken) before its messages queue. */
const MAX_CLAIM_ATTEMPTS = 8;

export class DynamoDeliveryStore implements DeliveryStore {
  private readonly completions: Completions;

  constructor(
    private readonly table: DynamoTable,
    private readonly sequence: SequenceGenerator,
    private readonly now: () => number,
  ) {
    this.completions = new Completions(table);
  }

  async startDeliveries(clientId: string, connectionId: string, receiveMaximum: number, messages: readonly QueuedMessage[]): Promise<DeliveryStart[]> {
    const answers: DeliveryStart[] = messages.map(() => 'queue');
    const counts = countsInFlight(receiveMaximum);
    // No more than the Receive Maximum in one claim (its condition holds for any n while no count exists yet).
    let want = counts ? Math.min(messages.length, receiveMaximum) : messages.length;
    for (let attempt = 0, repaired = false; want > 0 && attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
      const claim = await this.claimIds(clientId, connectionId, receiveMaximum, want);
      if (claim.ok) {
        const started = await this.recordClaimed(clientId, counts, messages.slice(0, want), claim.counter);
        started.forEach((start, i) => (answers[i] = start));
        // The rest (no room for them when claimed) queue behind these.
        break;
      }
      // Refused: why, from the session as it was. Gone, another connection's, held, or queued ahead: queue.
      const session = claim.old ?? (await this.table.get(sessionKey(clientId)));
      if (!session || !canStart(session, connectionId, this.now())) break;
      const inflight = Number(session.inflight ?? 0);
      if (counts && inflight >= receiveMaximum && !repaired && this.claimsSettled(session)) {
        // Full, and no claim for a while: a handler that died between its claim and its records may have left the count too high.
        repaired = true;
        if (await this.recountInFlight(clientId, session)) continue;
      }
      if (Number(session.queued ?? 0) > 0) break;
      // Full for all of them: as many as fit start, in order; the rest queue.
      const room = counts ? receiveMaximum - inflight : want;
      if (room <= 0) break;
      // Room for fewer than asked: those start; room for all (it freed up meanwhile): try again.
      want = Math.min(want, room);
    }
    return answers;
  }

  /**
   * Packet ids (and room under the Receive Maximum, when counted) for `n` messages, in one
   * single-item update of the session: no read before it and no transaction, so concurrent
   * deliverers never fail each other; DynamoDB applies them one after another. Refused: the session
   * as it was (when DynamoDB returns it).
   */
  private async claimIds(clientId: string, connectionId: string, receiveMaximum: number, n: number): Promise<{ ok: true; counter: number } | { ok: false; old?: Item }> {
    const counts = countsInFlight(receiveMaximum);
    const now = this.now();
    const claimed = await this.table.updateOrOld({
      Key: sessionKey(clientId),
      UpdateExpression: `SET claimedAt = :now ADD nextPacketId :span${counts ? ', inflight :n' : ''}`,
      ConditionExpression: [
        'connectionId = :c',
        // A CONNECT or a drain holds the session while it sends (new messages queue behind it) until its hold lapses.
        '(attribute_not_exists(heldUntil) OR heldUntil < :now)',
        '(attribute_not_exists(queued) OR queued <= :zero)',
        counts ? '(attribute_not_exists(inflight) OR inflight <= :room)' : '',
      ]
        .filter(Boolean)
        .join(' AND '),
      ExpressionAttributeValues: {
        ':c': connectionId,
        ':now': now,
        ':span': claimSpan(n),
        ':zero': 0,
        ...(counts ? { ':n': n, ':room': receiveMaximum - n } : {}),
      },
      ReturnValues: 'UPDATED_NEW',
    });
    if (!claimed.ok) return claimed;
    return { ok: true, counter: Number(claimed.attributes?.nextPacketId) };
  }

  /**
   * Claimed messages recorded in flight (`out#<id>`), before any is sent: unmarked ones in
   * BatchWriteItem calls, those with an exactly-once mark in transactions with their marks. Once the
   * session's counter has wrapped, ids still in flight are skipped first. A message whose mark exists
   * is 'duplicate' and gives its room back.
   */
  private async recordClaimed(clientId: string, counts: boolean, messages: readonly QueuedMessage[], counter: number): Promise<DeliveryStart[]> {
    const ids = await skipInFlight(this.table, clientId, claimedIds(counter, messages.length), counter);
    const orders = claimedRun(counter, messages.length);
    const entries = messages.map((message, i) => ({ message: { ...message, packetId: ids[i]! }, order: orders[i]! }));
    const plain = entries.filter((entry) => !entry.message.once);
    const marked = entries.flatMap((entry, index) => (entry.message.once ? [{ index, entry }] : []));
    const [, duplicates] = await Promise.all([plain.length > 0 ? writeEntries(this.table, clientId, plain) : undefined, this.recordMarked(clientId, marked)]);
    if (counts && duplicates.size > 0) {
      await this.table.updateIf({
        Key: sessionKey(clientId),
        UpdateExpression: 'ADD inflight :d',
        ConditionExpression: 'attribute_exists(clientId)',
        ExpressionAttributeValues: { ':d': -duplicates.size },
      });
    }
    return entries.map(({ message }, i) => (duplicates.has(i) ? 'duplicate' : { packetId: message.packetId }));
  }

  /**
   * Messages with an exactly-once mark: each recorded in flight in one transaction with its mark
   * (put only if absent), so a message is either delivered and marked, or neither. Returns the
   * indexes of those whose mark existed: delivered before.
   */
  private async recordMarked(clientId: string, marked: ReadonlyArray<{ index: number; entry: InFlightEntry }>): Promise<Set<number>> {
    const duplicates = new Set<number>();
    for (let i = 0; i < marked.length; i += MARKED_PER_TRANSACTION) {
      let chunk = marked.slice(i, i + MARKED_PER_TRANSACTION);
      while (chunk.length > 0) {
        const records = entryTransactItems(clientId, chunk.map(({ entry }) => entry));
        const written = await this.table.transact([...records, ...onceMarks(chunk.map(({ entry }) => entry.message), this.now())]);
        if (written.ok) break;
        const failed = chunk.filter((_, k) => written.failed[records.length + k]);
        // Nothing was written: try again without those delivered before.
        if (failed.length === 0) throw new Error('recording marked deliveries failed without a failed condition');
        for (const { index } of failed) duplicates.add(index);
        chunk = chunk.filter((entry) => !failed.includes(entry));
      }
    }
    return duplicates;
  }

  /** No claim for a while: any claim's handler has written its records or died. */
  private claimsSettled(session: Item): boolean {
    return typeof session.claimedAt !== 'number' || session.claimedAt < this.now() - CLAIMS_SETTLE_MS;
  }

  /**
   * The count of messages in flight set to the `out#` records there are (one query per shard), if
   * nothing was claimed or completed since `session` was read (the count as read, the counter as
   * read). True when that freed room.
   */
  private async recountInFlight(clientId: string, session: Item): Promise<boolean> {
    const records = countRecords(await queryOutRecords(this.table, clientId));
    const counted = Number(session.inflight ?? 0);
    if (records >= counted) return false;
    const counter = session.nextPacketId;
    const repaired = await this.table.updateIf({
      Key: sessionKey(clientId),
      UpdateExpression: 'SET inflight = :n',
      ConditionExpression: `inflight = :old AND ${typeof counter === 'number' ? 'nextPacketId = :counter' : 'attribute_not_exists(nextPacketId)'}`,
      ExpressionAttributeValues: { ':n': records, ':old': counted, ...(typeof counter === 'number' ? { ':counter': counter } : {}) },
    });
    return repaired !== undefined;
  }

  async enqueue(message: QueuedMessage, bound?: QueueBound): Promise<EnqueueResult> {
    return message.once ? this.enqueueMarked(message, bound) : this.enqueuePlain(message, bound);
  }

  /**
   * A message without an exactly-once mark joins the queue in two single-item writes, so that
   * many handlers queueing for one client at once never conflict: its `q#` item first, then
   * `ADD queued :one, queuedBytes :size` on the session (conditioned on the session existing, not
   * past its expiry, and the queue's bounds), which returns the session as the queue left it. The
   * count never says more than there is: a drain between the two claims the item and counts it
   * down, the `ADD` then evens it out; a handler that dies between them leaves an item uncounted,
   * which the next drain still claims (and the counts, below zero after it, are set back to zero
   * by a drain that finds the queue empty). Not counted (gone, ended, full): the item is deleted again.
   */
  private async enqueuePlain(message: QueuedMessage, bound?: QueueBound): Promise<EnqueueResult> {
    const { clientId } = message;
    const key = { clientId, sk: QUEUE_PREFIX + this.sequence.next() };
    const count = queueCount(message, bound, this.now());
    if (!count.fits) return { queued: false, full: true };
    await this.table.put({ Item: { ...messageItem(message), ...key, size: count.size } });
    const counted = await this.table.updateOrOld({ Key: sessionKey(clientId), ...count.update, ReturnValues: 'ALL_NEW' });
    if (counted.ok) return counted.attributes ? { queued: true, session: queueingSession(counted.attributes) } : { queued: true };
    await this.table.delete({ Key: key });
    const session = counted.old ?? (bound ? await this.table.get(sessionKey(clientId)) : undefined);
    return session && !isExpiredSession(session, this.now()) && count.full(session) ? { queued: false, full: true } : { queued: false };
  }

  /** A message with an exactly-once mark joins the queue in one transaction with its mark (and the counts). */
  private async enqueueMarked(message: QueuedMessage, bound?: QueueBound): Promise<EnqueueResult> {
    const { clientId } = message;
    // The queue's bounds are a condition on the session's own counts, in the same transaction.
    const count = queueCount(message, bound, this.now());
    if (!count.fits) return { queued: false, full: true };
    const written = await this.table.transact([
      { Update: { Key: sessionKey(clientId), ...count.update } },
      { Put: { Item: { ...messageItem(message), sk: QUEUE_PREFIX + this.sequence.next(), size: count.size } } },
      ...onceMarks([message], this.now()),
    ]);
    // The session is gone (or ended), its queue is full, or the mark says it was delivered before: nothing to keep.
    if (!written.ok) {
      if (!bound || !written.failed[0]) return { queued: false };
      const session = await this.table.get(sessionKey(clientId));
      return session && count.full(session) ? { queued: false, full: true } : { queued: false };
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
      if (items.length === 0) {
        // Counts below zero (a handler died between a queue item and its count, and a drain took the item): back to zero.
        const queued = Number(session.queued ?? 0);
        const bytes = Number(session.queuedBytes ?? 0);
        if (queued < 0 || bytes < 0) {
          await this.table.updateIf({
            Key: sessionKey(clientId),
            UpdateExpression: 'SET queued = :zero, queuedBytes = :zero',
            ConditionExpression: 'queued = :read AND (attribute_not_exists(queuedBytes) OR queuedBytes = :bytes)',
            ExpressionAttributeValues: { ':zero': 0, ':read': queued, ':bytes': bytes },
          });
        }
        return { messages, more: false };
      }
      const claimed = await this.claimIntoFlight(clientId, connectionId, receiveMaximum, session, items, hold);
      if (claimed) messages.push(...claimed);
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
    // The shards hold the blocks in no common order: recordsIn orders the messages as they went in.
    return recordsIn(clientId, await queryOutRecords(this.table, clientId));
  }

  async releaseOutgoing(clientId: string, packetId: number): Promise<boolean> {
    return releaseEntry(this.table, clientId, packetId);
  }

  completeOutgoing(clientId: string, packetId: number, receiveMaximum: number): Promise<{ queued: boolean }> {
    return this.completions.complete(clientId, packetId, receiveMaximum);
  }

  /**
   * One transaction: queued messages (`fromQueue`) in flight with the next packet ids (counted
   * under the Receive Maximum when it is below 65535) and their queue items deleted, the expired
   * ones without going in flight; the caller's hold taken (or renewed). Conditioned on the client
   * still on `connectionId`, nobody else holding it, the counter as read, and room for them all.
   * Only the holder claims the queue, so the counter rarely moves under it (a delivery's claim
   * refused by the hold changes nothing).
   */
  private async claimIntoFlight(clientId: string, connectionId: string, receiveMaximum: number, session: Item, fromQueue: readonly Item[], hold: DeliveryHold): Promise<OutgoingMessage[] | undefined> {
    const now = this.now();
    const live = fromQueue.map(toQueued).filter((m) => m.expiresAtMs === undefined || m.expiresAtMs > now);
    const counter = Number(session.nextPacketId ?? 0);
    const counts = countsInFlight(receiveMaximum);
    const { ids, first, last } = await freeIdsAfter(this.table, clientId, counter, live.length);
    const entries = live.map((message, i) => ({ message: { ...message, packetId: ids[i]! }, order: first + i }));
    const update = {
      Key: sessionKey(clientId),
      UpdateExpression: `SET nextPacketId = :next, heldBy = :hold, heldUntil = :until ADD queued :minus, queuedBytes :minusBytes${counts && live.length > 0 ? ', inflight :n' : ''}`,
      ConditionExpression: [
        'connectionId = :c AND (attribute_not_exists(heldUntil) OR heldUntil < :now OR heldBy = :hold)',
        counter === 0 ? 'attribute_not_exists(nextPacketId)' : 'nextPacketId = :counter',
        counts ? '(attribute_not_exists(inflight) OR inflight <= :room)' : '',
      ]
        .filter(Boolean)
        .join(' AND '),
      ExpressionAttributeValues: {
        ':next': last,
        ':c': connectionId,
        ':now': now,
        ':hold': hold.token,
        ':until': now + hold.leaseMs,
        ...(counter === 0 ? {} : { ':counter': counter }),
        ...(counts && live.length > 0 ? { ':n': live.length } : {}),
        ...(counts ? { ':room': receiveMaximum - live.length } : {}),
        ':minus': -fromQueue.length,
        ':minusBytes': -fromQueue.reduce((sum, item) => sum + Number(item.size ?? 0), 0),
      },
    };
    const written = await this.table.transact([
      { Update: update },
      ...fromQueue.map((item) => ({ Delete: { Key: { clientId, sk: item.sk }, ConditionExpression: 'attribute_exists(sk)' } })),
      ...entryTransactItems(clientId, entries),
    ]);
    return written.ok ? entries.map(({ message }) => message) : undefined;
  }

}
