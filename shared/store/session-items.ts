/**
 * The Sessions table's key scheme (see tables.ts), shared by the adapters whose items live in a
 * client's partition: the session item, subscriptions, messages queued, QoS 2 receipts,
 * exactly-once marks and the delayed will; and the partitions of its messages in flight (its
 * shards). Also the rules they read session items by.
 */
import type { DynamoTable, Item } from './dynamo-table';
import { shardOf } from './shard-hash';
import { TIMER_INDEX } from './tables';

export const SESSION_SK = 'session';
export const SUB_PREFIX = 'sub#';
export const OUT_PREFIX = 'out#';
export const IN_PREFIX = 'in#';
export const QUEUE_PREFIX = 'q#';
export const ONCE_PREFIX = 'd#';
export const WILL_SK = 'will';
export const MAX_IN_FLIGHT_IDS = 65535;
/** How long TTL waits past an item's end before deleting it: a backup, the timers act first. */
export const TTL_GRACE_SECONDS = 86_400;

export function sessionKey(clientId: string): Item {
  return { clientId, sk: SESSION_SK };
}

/**
 * A client's messages in flight are packed into block items, one per run of OUT_BLOCK_IDS packet
 * ids (ids 1..15 in block 0, 16..30 in block 1, ...; 65535 is a multiple of it, so no block
 * spans the ids' wrap-around), each message an attribute `m<packet id>` of its block (see
 * in-flight-blocks.ts). A run of messages claimed together starts a block, so its records are
 * written in one update per block it fills.
 */
export const OUT_BLOCK_IDS = 15;

/** The block of a packet id (0 .. 65535 / OUT_BLOCK_IDS - 1). */
export function outBlockOf(packetId: number): number {
  return Math.floor((packetId - 1) / OUT_BLOCK_IDS);
}

/** The packet ids of a block, in order. */
export function outBlockIds(block: number): number[] {
  return Array.from({ length: OUT_BLOCK_IDS }, (_, i) => block * OUT_BLOCK_IDS + i + 1);
}

/**
 * A client's in-flight blocks are spread over this many partitions of their own, so that its
 * session partition carries only the session item's updates. A partition takes 1,000 write units
 * a second, and a block is written twice (when its claim goes, and when its acknowledgements
 * come): 4 shards carry several thousand deliveries a second to one subscriber, while a session's
 * end or resumption costs one query per shard.
 */
export const OUT_SHARDS = 4;

/**
 * U+0000 cannot appear in a client id (3.1.1 [MQTT-1.5.3-2], 5.0 [MQTT-1.5.4-2]; the codec refuses it, see
 * shared/protocol/strict-utf8.ts), so a shard's key never equals another client's id.
 */
const OUT_SHARD_SEPARATOR = '\u0000o';

/** The partition key of the client's in-flight shard `shard` (0 .. OUT_SHARDS - 1). */
function outPartition(clientId: string, shard: number): string {
  return clientId + OUT_SHARD_SEPARATOR + String(shard);
}

/** The key of in-flight block `block`: consecutive blocks go to consecutive shards. */
export function outBlockKey(clientId: string, block: number): Item {
  return { clientId: outPartition(clientId, block % OUT_SHARDS), sk: OUT_PREFIX + String(block).padStart(4, '0') };
}

/** Every partition key that may hold the client's in-flight records. */
export function outPartitions(clientId: string): string[] {
  return Array.from({ length: OUT_SHARDS }, (_, shard) => outPartition(clientId, shard));
}

/** The client's in-flight records, all shards queried at once (in no particular order). */
export async function queryOutRecords(sessions: DynamoTable, clientId: string, projection?: string): Promise<Item[]> {
  const shards = await Promise.all(
    outPartitions(clientId).map((partition) =>
      sessions.queryAll({
        KeyConditionExpression: 'clientId = :c AND begins_with(sk, :o)',
        ExpressionAttributeValues: { ':c': partition, ':o': OUT_PREFIX },
        ...(projection ? { ProjectionExpression: projection } : {}),
      }),
    ),
  );
  return shards.flat();
}

/**
 * Whether the session item says records may exist in its shards: a record is written only after a
 * claim of packet ids on the session item (`ADD nextPacketId`), so a session that never claimed
 * (or no session item at all) has none.
 */
export function mayHaveOutRecords(session: Item | undefined): boolean {
  return typeof session?.nextPacketId === 'number';
}

/**
 * The timer index's partition key values: per kind, TIMER_SHARDS of them (`expiry#0` ..
 * `expiry#15`), a client's chosen by a hash of its client id. One key value of an index takes at
 * most 1,000 writes a second, and its writes throttle the table's: with one value per kind, a
 * fleet of persistent sessions going offline at once after a deploy (every detach writes the
 * index) would be throttled at 1,000 a second. The sweeper queries every shard (a few dozen
 * Queries a minute). Items written before the shards carry the bare kind, still queried.
 */
export const TIMER_SHARDS = 16;

export type TimerKind = 'expiry' | 'will';

/** The timer index key of `clientId`'s item of this kind. */
export function timerKey(kind: TimerKind, clientId: string): string {
  return timerShardKey(kind, shardOf(clientId, TIMER_SHARDS));
}

function timerShardKey(kind: TimerKind, shard: number): string {
  return `${kind}#${shard}`;
}

/** Whether an item's `timer` is of this kind (sharded or, written before the shards, bare). */
export function isTimerOf(timer: unknown, kind: TimerKind): boolean {
  return typeof timer === 'string' && (timer === kind || timer.startsWith(`${kind}#`));
}

/** TTL deletes late (and sessions end at their timer, before TTL): an item past its expiry is treated as absent. */
export function isExpired(item: Item, nowMs: number): boolean {
  if (isTimerOf(item.timer, 'expiry') && typeof item.timerAt === 'number') return item.timerAt <= nowMs;
  return typeof item.expiresAt === 'number' && item.expiresAt * 1000 <= nowMs;
}

/**
 * A client that accepts the protocol's whole 65535 needs no count of messages in flight (packet
 * ids run out no sooner): one write less per delivery's acknowledgement.
 */
export function countsInFlight(receiveMaximum: number): boolean {
  return receiveMaximum < MAX_IN_FLIGHT_IDS;
}

/** Packet identifiers are 1..65535 [MQTT-2.2.1-3]; the session's counter wraps around them. */
export function packetIdOf(counter: number): number {
  return ((counter - 1) % MAX_IN_FLIGHT_IDS) + 1;
}

/** Sort keys and receipt ids: sortable and unique within the process (epoch ms, then a counter, then this process). */
export class SequenceGenerator {
  private last = { ms: 0, n: 0 };
  private readonly instance = Math.random().toString(36).slice(2, 8);

  constructor(private readonly now: () => number) {}

  next(): string {
    const now = this.now();
    this.last = now > this.last.ms ? { ms: now, n: 0 } : { ms: this.last.ms, n: this.last.n + 1 };
    return `${String(this.last.ms).padStart(15, '0')}#${String(this.last.n).padStart(6, '0')}#${this.instance}`;
  }
}

/**
 * Items of the timer index due by `now`, the earliest first, at most `limit`: every shard queried
 * (and the bare kind, of items written before the shards). The index is eventually consistent:
 * callers claim each item.
 */
export async function dueTimers(sessions: DynamoTable, kind: TimerKind, now: number, limit: number): Promise<Item[]> {
  const keys = [kind, ...Array.from({ length: TIMER_SHARDS }, (_, shard) => timerShardKey(kind, shard))];
  const found = await Promise.all(
    keys.map((key) =>
      sessions.query({
        IndexName: TIMER_INDEX,
        KeyConditionExpression: '#timer = :t AND timerAt <= :now',
        ExpressionAttributeNames: { '#timer': 'timer' },
        ExpressionAttributeValues: { ':t': key, ':now': now },
        Limit: limit,
      }),
    ),
  );
  return found
    .flat()
    .sort((a, b) => Number(a.timerAt) - Number(b.timerAt))
    .slice(0, limit);
}
