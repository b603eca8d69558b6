/**
 * Per-user counts that a tenant cannot take past a bound (the sessions one user name holds, ...):
 * counter items in the table that holds what they count, each written in the same transaction
 * as the item it counts, on condition that it stays within its bound.
 *
 * A user's count is spread over shards of at most SHARD_BOUND each, picked by a hash of what is
 * counted (the client id), so a fleet of devices sharing one user name never makes one counter a
 * hot key: one shard per 1,000 of the bound, each bounded by its share of it. A user is refused
 * when the shard its new item falls in is full: for a bound of 1,000 or less exactly at the
 * bound, above it within a few percent of it (hashes spread evenly). The key an item was counted
 * under is stored on the item, so it is counted out where it was counted in, even after the
 * bound (and so the number of shards) changed.
 */
import { createHash } from 'node:crypto';
import type { Item, TransactItem } from './dynamo-table';

const SHARD_BOUND = 1000;
const MAX_SHARDS = 100;

/** Where an item of `owner`'s is counted, for a bound of `bound`: the counter item's key, as one string. */
export function quotaKey(kind: string, owner: string, countedId: string, bound: number): string {
  const shards = shardsFor(bound);
  const shard = createHash('sha256').update(countedId).digest().readUInt32BE(0) % shards;
  // U+0000 cannot be in a client id or a topic, so the key is no client's or topic's own.
  return `\u0000quota\u0000${kind}\u0000${owner}\u0000${shard}`;
}

function shardsFor(bound: number): number {
  return Math.min(MAX_SHARDS, Math.max(1, Math.ceil(bound / SHARD_BOUND)));
}

/** The bound of one shard of a user's count. */
export function shardBound(bound: number): number {
  return Math.ceil(bound / shardsFor(bound));
}

/** Count one more in `key`'s shard, on condition that it has room (a transaction's item). */
export function countIn(keyOf: (key: string) => Item, key: string, bound: number): TransactItem {
  return {
    Update: {
      Key: keyOf(key),
      UpdateExpression: 'ADD #n :one',
      ConditionExpression: 'attribute_not_exists(#n) OR #n < :bound',
      ExpressionAttributeNames: { '#n': 'count' },
      ExpressionAttributeValues: { ':one': 1, ':bound': shardBound(bound) },
    },
  };
}

/** Count one more in `key`'s shard whatever it holds (an item that was counted elsewhere moves in). */
export function countInAnyway(keyOf: (key: string) => Item, key: string): TransactItem {
  return { Update: { Key: keyOf(key), UpdateExpression: 'ADD #n :one', ExpressionAttributeNames: { '#n': 'count' }, ExpressionAttributeValues: { ':one': 1 } } };
}

/** Count `amount` (one) out of `key`'s shard (a transaction's item). */
export function countOut(keyOf: (key: string) => Item, key: string, amount = 1): TransactItem {
  return { Update: countOutUpdate(keyOf, key, amount) };
}

/** The same, as an update of its own. */
export function countOutUpdate(keyOf: (key: string) => Item, key: string, amount: number) {
  return { Key: keyOf(key), UpdateExpression: 'ADD #n :minus', ExpressionAttributeNames: { '#n': 'count' }, ExpressionAttributeValues: { ':minus': -amount } };
}

/** A counter item's key in the Sessions table, whose partition key is `clientId`. */
export function quotaInSessions(key: string): Item {
  return { clientId: key, sk: 'quota' };
}

/** How many items carry each counter key (`quota`), to count them out together. */
export function countedKeys(items: readonly Item[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) if (typeof item.quota === 'string') counts.set(item.quota, (counts.get(item.quota) ?? 0) + 1);
  return counts;
}
