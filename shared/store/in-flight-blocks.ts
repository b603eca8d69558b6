/**
 * QoS 1/2 messages in flight, packed: a client's records live in block items (`out#<block>` in
 * its in-flight shards, see session-items.ts outBlockKey), one attribute `m<packet id>` per
 * message, holding the message (see entryValue), its order (the session counter's value its
 * claim took for it: the order the messages went in) and, once a QoS 2 delivery is PUBRECed, its
 * state `pubrel` without its payload.
 *
 * A run of messages claimed together starts a block (claimSpan), so its records cost one update
 * per block they fill, sized by what the block holds (a write unit per KB: about eight small
 * messages), where one item per message cost a write unit each; the acknowledgements of a block,
 * arriving together, delete it in one call. The writes ask for the item back (ALL_NEW, ALL_OLD)
 * so that the harness's meter charges them by the item's size, as DynamoDB does.
 */
import type { OutgoingMessage } from '../broker/ports';
import type { DynamoTable, Item, TransactItem } from './dynamo-table';
import { messageItem, toQueued } from './message-items';
import { OUT_BLOCK_IDS, outBlockIds, outBlockKey, outBlockOf } from './session-items';

/** A message about to go in flight: its packet id and its place in the session's order. */
export interface InFlightEntry {
  readonly message: OutgoingMessage;
  readonly order: number;
}

/**
 * How many counter values a claim of `n` packet ids takes. One message takes one id; a run of them
 * takes room for its ids to start a block (at most OUT_BLOCK_IDS - 1 ids left unused before it),
 * so that its records fill blocks of their own. The claim reads nothing first: it learns the
 * counter's value only from its update, so it takes the room and places the run in it (claimedRun).
 */
export function claimSpan(n: number): number {
  return n <= 1 ? n : n + OUT_BLOCK_IDS - 1;
}

/** The first counter value at or after `counter` whose packet id starts a block. */
export function blockStart(counter: number): number {
  return counter + ((OUT_BLOCK_IDS - ((counter - 1) % OUT_BLOCK_IDS)) % OUT_BLOCK_IDS);
}

/** The counter values a claim of `n` that left the counter at `counter` gives its messages, in order. */
export function claimedRun(counter: number, n: number): number[] {
  const first = n <= 1 ? counter : blockStart(counter - claimSpan(n) + 1);
  return Array.from({ length: n }, (_, i) => first + i);
}

/** Things grouped by the block of their packet id, in their order. */
function byBlock<T>(things: readonly T[], packetIdOf: (thing: T) => number): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const thing of things) {
    const block = outBlockOf(packetIdOf(thing));
    const group = groups.get(block);
    if (group) group.push(thing);
    else groups.set(block, [thing]);
  }
  return groups;
}

function entryName(packetId: number): string {
  return `m${packetId}`;
}

/**
 * The record of a message in flight, as its block's attribute: a block is billed by its size, so
 * the fields every record has go by one letter (t topic, p payload, q QoS, r retain when set,
 * o order, s state), the rest (properties, expiry, subscription identifiers) as messageItem names them.
 */
function entryValue({ message, order }: InFlightEntry): Item {
  const { clientId: _clientId, topic, payload, qos, retain, packetId: _packetId, state: _state, ...rest } = messageItem(message);
  return { t: topic, p: payload, q: qos, ...(retain ? { r: true } : {}), o: order, ...rest };
}

/** The message a record holds, as messageItem names its fields. */
function entryMessage(entry: Item): Item {
  const { t, p, q, r, o: _order, s: _state, ...rest } = entry;
  return { ...rest, topic: t, ...(p !== undefined ? { payload: p } : {}), qos: q, retain: r === true };
}

/** The entries grouped by block: the updates that write them (one per block), for a single call or a transaction. */
export function blockWrites(clientId: string, entries: readonly InFlightEntry[]): Array<{ Key: Item; UpdateExpression: string; ExpressionAttributeValues: Item }> {
  return [...byBlock(entries, (entry) => entry.message.packetId)].map(([block, inBlock]) => ({
    Key: outBlockKey(clientId, block),
    UpdateExpression: `SET ${inBlock.map((e) => `${entryName(e.message.packetId)} = :${entryName(e.message.packetId)}`).join(', ')}`,
    ExpressionAttributeValues: Object.fromEntries(inBlock.map((e) => [`:${entryName(e.message.packetId)}`, entryValue(e)])),
  }));
}

/** The entries written, one update per block (in parallel). */
export async function writeEntries(table: DynamoTable, clientId: string, entries: readonly InFlightEntry[]): Promise<void> {
  await Promise.all(blockWrites(clientId, entries).map((write) => table.update({ ...write, ReturnValues: 'ALL_NEW' })));
}

/** The same writes as transaction items. */
export function entryTransactItems(clientId: string, entries: readonly InFlightEntry[]): TransactItem[] {
  return blockWrites(clientId, entries).map((write) => ({ Update: write }));
}

/** The packet ids a block item holds records of. */
function idsIn(item: Item | undefined): number[] {
  if (!item) return [];
  return Object.keys(item).flatMap((name) => (/^m\d+$/.test(name) ? [Number(name.slice(1))] : []));
}

/** The messages a client's block items hold, in the order they went in flight. */
export function recordsIn(clientId: string, blocks: readonly Item[]): OutgoingMessage[] {
  return blocks
    .flatMap((block) => idsIn(block).map((packetId) => ({ packetId, entry: block[entryName(packetId)] as Item })))
    .sort((a, b) => Number(a.entry.o) - Number(b.entry.o))
    .map(({ packetId, entry }) => ({ ...toQueued({ ...entryMessage(entry), clientId }), packetId, state: entry.s === 'pubrel' ? 'pubrel' : 'publish' }));
}

/** How many records the block items hold. */
export function countRecords(blocks: readonly Item[]): number {
  return blocks.reduce((sum, block) => sum + idsIn(block).length, 0);
}

/** Which of these packet ids have a record in flight (their blocks read, strongly consistent). */
export async function idsInFlight(table: DynamoTable, clientId: string, packetIds: readonly number[]): Promise<Set<number>> {
  const blocks = [...new Set(packetIds.map(outBlockOf))];
  const items = await table.batchGet(blocks.map((block) => outBlockKey(clientId, block)));
  const held = new Set(items.flatMap(idsIn));
  return new Set(packetIds.filter((id) => held.has(id)));
}

/** A QoS 2 delivery PUBRECed: its record kept as `pubrel`, without its payload. False: no record. */
export async function releaseEntry(table: DynamoTable, clientId: string, packetId: number): Promise<boolean> {
  const name = entryName(packetId);
  const released = await table.updateIf({
    Key: outBlockKey(clientId, outBlockOf(packetId)),
    UpdateExpression: `SET ${name}.s = :pubrel REMOVE ${name}.p`,
    ConditionExpression: `attribute_exists(${name})`,
    ExpressionAttributeValues: { ':pubrel': 'pubrel' },
    ReturnValues: 'ALL_OLD',
  });
  return released !== undefined;
}

/**
 * Acknowledged deliveries' records removed; returns how many there were (an acknowledgement
 * repeated finds none). Per block: when no other record of the block remains (the common case: a
 * claim's messages acknowledged together) one conditional delete; otherwise one update removing
 * these, conditioned on the block existing (an update would create it).
 */
export async function removeEntries(table: DynamoTable, clientId: string, packetIds: Iterable<number>): Promise<number> {
  const found = await Promise.all([...byBlock([...packetIds], (id) => id)].map(([block, ids]) => removeFromBlock(table, clientId, block, ids)));
  return found.reduce((sum, n) => sum + n, 0);
}

async function removeFromBlock(table: DynamoTable, clientId: string, block: number, ids: readonly number[]): Promise<number> {
  const Key = outBlockKey(clientId, block);
  const acked = new Set(ids);
  const others = outBlockIds(block).filter((id) => !acked.has(id));
  const foundIn = (old: Item | undefined) => idsIn(old).filter((id) => acked.has(id)).length;
  if (others.length === 0) return foundIn(await table.delete({ Key, ReturnValues: 'ALL_OLD' }));
  const deleted = await table.deleteIf({
    Key,
    ConditionExpression: others.map((id) => `attribute_not_exists(${entryName(id)})`).join(' AND '),
    ReturnValues: 'ALL_OLD',
  });
  if (deleted) return foundIn(deleted.attributes);
  const removed = await table.updateIf({
    Key,
    UpdateExpression: `REMOVE ${ids.map(entryName).join(', ')}`,
    ConditionExpression: 'attribute_exists(sk)',
    ReturnValues: 'ALL_OLD',
  });
  return foundIn(removed?.attributes);
}
