/**
 * The DeliveryStore's contract, against DynamoDB Local: QoS 1 and 2 messages on their way to a
 * client. What holds atomically: a delivery starts (gets a packet id, is recorded in flight) only
 * while the client is on the connection named, nobody holds its deliveries back, it has room under
 * its Receive Maximum and nothing is queued ahead; packet ids are never shared; an exactly-once
 * mark makes a second delivery 'duplicate'. The queue drains oldest first, to the holder only;
 * what enqueue reports is what the broker decides a drain by (shared/broker/delivery-policy.ts).
 * One set of tables for the file; every test uses its own client ids.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { localCredentials, LOCAL_REGION } from '../../../local/local-aws';
import { createDynamoStore } from '../../../shared/store/create-dynamo-store';
import { connectHold, type OpenSessionRequest, type OutgoingMessage, type QueuedMessage } from '../../../shared/broker/ports';
import type { DynamoStore } from '../../../shared/store/create-dynamo-store';
import { outPartitions, OUT_SHARDS } from '../../../shared/store/session-items';
import { uniqueClientId, storeFixtureForFile } from '../store-fixture';
import {
  CLAIM_BATCH,
  connect as connectOn,
  connectionId,
  decided,
  hold,
  HOLD_MS,
  inFlight as startInFlight,
  limits,
  message,
  payloads,
  subscribedClient,
} from './support';

const fixture = await storeFixtureForFile();
const store = fixture.store;

const connect = (request: OpenSessionRequest, target: DynamoStore = store) => connectOn(target, request);
const inFlight = (conn: string, messages: readonly QueuedMessage[], receiveMaximum = 65535) => startInFlight(store, conn, messages, receiveMaximum);
const connectedWithSubscriptions = () => subscribedClient(store);

/** What the table holds under one partition key, read directly. */
async function partition(key: string): Promise<Array<Record<string, unknown>>> {
  const out = await fixture.documentClient.send(
    new QueryCommand({ TableName: fixture.tables.sessions, KeyConditionExpression: 'clientId = :c', ExpressionAttributeValues: { ':c': key }, ConsistentRead: true }),
  );
  return out.Items ?? [];
}

/** Everything of the client in the Sessions table: its own partition and its in-flight shards, by partition key. */
async function clientItems(clientId: string): Promise<Map<string, string[]>> {
  const keys = [clientId, ...outPartitions(clientId)];
  const found = await Promise.all(keys.map(async (key) => [key, (await partition(key)).map((item) => String(item.sk))] as const));
  return new Map(found.filter(([, sks]) => sks.length > 0));
}

describe('startDeliveries', () => {
  it('[MQTT-2.2.1-3] startDeliveries hands out increasing packet ids to the connection holding the session, and none to others', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    expect(await inFlight(conn, [message(clientId, 1)], 100)).toEqual([1]);
    // A run claimed together starts a block of packet ids (15 to a block): ids 2..15 are passed over.
    const run = await inFlight(conn, [message(clientId, 2), message(clientId, 3)], 100);
    expect(run).toEqual([16, 17]);
    expect(await store.deliveries.startDeliveries(clientId, 'another-connection', 100, [message(clientId, 4)])).toEqual(['queue']);
    const nobody = uniqueClientId('no-session');
    expect(await store.deliveries.startDeliveries(nobody, conn, 100, [message(nobody, 1)])).toEqual(['queue']);
    // Each one started is in flight, for a reconnecting client to get again.
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.packetId, m.payload.toString()])).toEqual([
      [1, 'm1'],
      [16, 'm2'],
      [17, 'm3'],
    ]);
  });

  it('concurrent deliveries never share a packet id, and every one is recorded in flight', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    const ids = (await Promise.all(Array.from({ length: 40 }, (_, n) => inFlight(conn, [message(clientId, n)])))).flat();
    expect(new Set(ids).size).toBe(40);
    expect(ids.every((id) => id >= 1 && id <= 65535)).toBe(true);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => m.packetId).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
  });

  it('[MQTT-4.9.0-2] startDeliveries starts messages while they fit under the Receive Maximum; the rest queue', async () => {
    const clientId = uniqueClientId('many');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 5, topicAliasMaximum: 0 });
    expect(await inFlight(conn, [1, 2, 3].map((n) => message(clientId, n)), 5)).toEqual([1, 2, 3]);
    const starts = await store.deliveries.startDeliveries(clientId, conn, 5, [4, 5, 6].map((n) => message(clientId, n)));
    expect(starts).toEqual([{ packetId: 31 }, { packetId: 32 }, 'queue']);
    // A first delivery of more than the Receive Maximum, before any count exists.
    const fresh = uniqueClientId('many-first');
    const freshConn = connectionId();
    await connect({ clientId: fresh, connectionId: freshConn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 2, topicAliasMaximum: 0 });
    expect(await store.deliveries.startDeliveries(fresh, freshConn, 2, [1, 2, 3].map((n) => message(fresh, n)))).toEqual([{ packetId: 1 }, { packetId: 2 }, 'queue']);
  });

  it('[MQTT-4.3.3] a QoS 2 delivery marked exactly once is made once, however often it is tried (in flight or queued)', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    const publisher = uniqueClientId('once-pub');
    const once = (n: number) => ({ ...message(clientId, n, 2), once: { clientId: publisher, key: `${n}#x>${clientId}` } });
    expect(await inFlight(conn, [once(1), once(2)])).toEqual([1, 2]);
    // Routed again: 1 and 2 were made; 3 is new and starts (the messages around a duplicate still do),
    // with an id of its own (the ids claimed for the duplicates are left unused).
    const again = await store.deliveries.startDeliveries(clientId, conn, 65535, [once(1), once(3), once(2)]);
    expect(again).toEqual(['duplicate', { packetId: expect.any(Number) }, 'duplicate']);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.payload.toString(), m.packetId])).toEqual([
      ['m1', 1],
      ['m2', 2],
      ['m3', (again[1] as { packetId: number }).packetId],
    ]);
    expect([1, 2]).not.toContain((again[1] as { packetId: number }).packetId);
    await store.sessions.closeSession(clientId, conn, false, 3600);
    expect(decided(await store.deliveries.enqueue(once(4)))).toEqual({ queued: true });
    expect(await store.deliveries.enqueue(once(4))).toEqual({ queued: false });
    expect(await store.deliveries.enqueue(once(1))).toEqual({ queued: false });
  });

  it('nothing overtakes the queue: while a message is queued, new ones queue behind it', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    expect(decided(await store.deliveries.enqueue(message(clientId, 1)))).toEqual({ queued: true, drainOn: conn });
    expect(await store.deliveries.startDeliveries(clientId, conn, 65535, [message(clientId, 2)])).toEqual(['queue']);
    expect(decided(await store.deliveries.enqueue(message(clientId, 2)))).toEqual({ queued: true, drainOn: conn });
    expect(payloads((await store.deliveries.claimQueued(clientId, conn, 65535, hold('drain:order'), CLAIM_BATCH)).messages)).toEqual(['m1', 'm2']);
    expect(await store.deliveries.releaseHold(clientId, conn, 'drain:order', 65535)).toBe('released');
    expect(await inFlight(conn, [message(clientId, 3)])).toEqual([3]);
  });
});

describe('queue bound', () => {
  it('enqueue takes no more once maxQueued messages are queued (full), keeping the oldest; a claimed message makes room', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    await store.sessions.closeSession(clientId, conn, false, 3600);
    for (const n of [1, 2, 3]) expect(decided(await store.deliveries.enqueue(message(clientId, n), { messages: 3 }))).toEqual({ queued: true });
    expect(await store.deliveries.enqueue(message(clientId, 4), { messages: 3 })).toEqual({ queued: false, full: true });
    // Without a bound the same queue takes it (the bound is the caller's).
    expect(decided(await store.deliveries.enqueue(message(clientId, 5)))).toEqual({ queued: true });
    // A session that is gone is not 'full'.
    const nobody = uniqueClientId('no-session');
    expect(await store.deliveries.enqueue(message(nobody, 1), { messages: 3 })).toEqual({ queued: false });
    const next = connectionId();
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    expect(payloads((await store.deliveries.claimQueued(clientId, next, 65535, { token: connectHold(next), leaseMs: HOLD_MS }, CLAIM_BATCH)).messages)).toEqual(['m1', 'm2', 'm3', 'm5']);
    expect((await store.deliveries.enqueue(message(clientId, 6), { messages: 3 })).queued).toBe(true);
  });

  it('enqueue takes no more once the bytes queued would pass the byte bound (full); a drain gives the bytes back', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    await store.sessions.closeSession(clientId, conn, false, 3600);
    const size = Buffer.byteLength(message(clientId, 1).topic) + message(clientId, 1).payload.length;
    const bound = { messages: 100, bytes: 3 * size };
    for (const n of [1, 2, 3]) expect(decided(await store.deliveries.enqueue(message(clientId, n), bound))).toEqual({ queued: true });
    expect(await store.deliveries.enqueue(message(clientId, 4), bound)).toEqual({ queued: false, full: true });
    // One larger than the whole bound never fits, whatever is queued.
    const large = { ...message(clientId, 5), payload: Buffer.alloc(4 * size) };
    expect(await store.deliveries.enqueue(large, { messages: 100, bytes: 3 * size })).toEqual({ queued: false, full: true });
    const next = connectionId();
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    expect(payloads((await store.deliveries.claimQueued(clientId, next, 65535, { token: connectHold(next), leaseMs: HOLD_MS }, CLAIM_BATCH)).messages)).toEqual(['m1', 'm2', 'm3']);
    await store.sessions.closeSession(clientId, next, false, 3600);
    for (const n of [6, 7, 8]) expect(decided(await store.deliveries.enqueue(message(clientId, n), bound))).toEqual({ queued: true });
    expect((await store.deliveries.enqueue(message(clientId, 9), bound)).queued).toBe(false);
  });
});

describe('holds', () => {
  it('[MQTT-3.2.0-1] [MQTT-4.4.0-1] while a CONNECT resumes the session, new deliveries queue; its own drain may claim them', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    await store.sessions.closeSession(clientId, conn, false, 3600);
    const next = connectionId();
    const hold = connectHold(next);
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    // The connection is not offered to routing yet, and a delivery to it queues.
    expect((await store.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBeUndefined();
    expect(await store.deliveries.startDeliveries(clientId, next, 65535, [message(clientId, 1)])).toEqual(['queue']);
    expect(decided(await store.deliveries.enqueue(message(clientId, 1)))).toEqual({ queued: true });
    // Nobody else may drain it; the hold is not released while something is queued: the CONNECT drains it first.
    expect((await store.deliveries.claimQueued(clientId, next, 65535, { token: 'drain:someone-else', leaseMs: HOLD_MS }, 25)).messages).toEqual([]);
    expect(await store.deliveries.releaseHold(clientId, next, hold, 65535)).toBe('queued');
    expect((await store.deliveries.claimQueued(clientId, next, 65535, { token: hold, leaseMs: HOLD_MS }, 25)).messages.map((m) => m.payload.toString())).toEqual(['m1']);
    expect(await store.deliveries.releaseHold(clientId, next, hold, 65535)).toBe('released');
    expect((await store.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBe(next);
    expect(await inFlight(next, [message(clientId, 2)])).toEqual([2]);
    // Another connection took the session over: this CONNECT holds nothing any more.
    const third = connectionId();
    await store.sessions.openSession({ clientId, connectionId: third, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    expect(await store.deliveries.releaseHold(clientId, next, hold, 65535)).toBe('not-held');
  });

  it('a drain holds new deliveries back until it has sent what it claimed; a holder that died is outlived by its lease', async () => {
    let now = Date.now();
    const clocked = fixture.storeAt(() => now);
    const clientId = uniqueClientId('drain');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 2, topicAliasMaximum: 0 }, clocked);
    const [first] = await clocked.deliveries.startDeliveries(clientId, conn, 2, [message(clientId, 1), message(clientId, 2)]).then((s) => s.map((x) => (x as { packetId: number }).packetId));
    expect(decided(await clocked.deliveries.enqueue(message(clientId, 3)), now)).toEqual({ queued: true });
    await clocked.deliveries.completeOutgoing(clientId, first!, 2);
    expect((await clocked.deliveries.claimQueued(clientId, conn, 2, { token: 'drain:a', leaseMs: HOLD_MS }, 25)).messages.map((m) => m.payload.toString())).toEqual(['m3']);
    await clocked.deliveries.completeOutgoing(clientId, 2, 2);
    // m3 is claimed but maybe not sent yet: a new message waits behind it, and a second drain gets nothing.
    expect(await clocked.deliveries.startDeliveries(clientId, conn, 2, [message(clientId, 4)])).toEqual(['queue']);
    expect(decided(await clocked.deliveries.enqueue(message(clientId, 4)), now)).toEqual({ queued: true });
    expect((await clocked.deliveries.claimQueued(clientId, conn, 2, { token: 'drain:b', leaseMs: HOLD_MS }, 25)).messages).toEqual([]);
    // Drain a died: after the lease, drain b goes on.
    now += 31_000;
    expect((await clocked.deliveries.claimQueued(clientId, conn, 2, { token: 'drain:b', leaseMs: HOLD_MS }, 25)).messages.map((m) => m.payload.toString())).toEqual(['m4']);
    expect(await clocked.deliveries.releaseHold(clientId, conn, 'drain:a', 2)).toBe('not-held');
    expect(await clocked.deliveries.releaseHold(clientId, conn, 'drain:b', 2)).toBe('released');
  });

  it('releaseHold lets go with nothing queued, or with no room for what is queued (the acknowledgement that frees a slot drains)', async () => {
    const clientId = uniqueClientId('release');
    const conn = connectionId();
    await store.sessions.openSession({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 1, topicAliasMaximum: 0 });
    expect(await store.deliveries.releaseHold(clientId, conn, 'drain:not-mine', 1)).toBe('not-held');
    expect(await store.deliveries.releaseHold(clientId, conn, connectHold(conn), 1)).toBe('released');
    expect(await inFlight(conn, [message(clientId, 1)], 1)).toEqual([1]);
    expect(decided(await store.deliveries.enqueue(message(clientId, 2)))).toEqual({ queued: true });
    expect(decided(await store.deliveries.enqueue(message(clientId, 3)))).toEqual({ queued: true });
    // Full: a drain claims nothing, and so holds nothing.
    expect(await store.deliveries.claimQueued(clientId, conn, 1, hold('drain:full'), CLAIM_BATCH)).toEqual({ messages: [], more: true });
    expect(await store.deliveries.releaseHold(clientId, conn, 'drain:full', 1)).toBe('not-held');
    expect(await store.deliveries.completeOutgoing(clientId, 1, 1)).toEqual({ queued: true });
    // The acknowledgement's drain claims m2 and is full again: it lets go with m3 still queued.
    const acked = await store.deliveries.claimQueued(clientId, conn, 1, hold('drain:ack'), CLAIM_BATCH);
    expect({ messages: payloads(acked.messages), more: acked.more }).toEqual({ messages: ['m2'], more: true });
    expect(await store.deliveries.releaseHold(clientId, conn, 'drain:ack', 1)).toBe('released');
    expect(await store.deliveries.completeOutgoing(clientId, 2, 1)).toEqual({ queued: true });
    expect(payloads((await store.deliveries.claimQueued(clientId, conn, 1, hold('drain:next'), CLAIM_BATCH)).messages)).toEqual(['m3']);
    expect(await store.deliveries.releaseHold(clientId, conn, 'drain:next', 1)).toBe('released');
  });

  it('two drains at once never claim one queued message twice; while one holds the session the other claims nothing', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    for (const n of [1, 2, 3, 4, 5, 6]) await store.deliveries.enqueue(message(clientId, n));
    const [a, b] = await Promise.all([
      store.deliveries.claimQueued(clientId, conn, 65535, hold('drain:a'), 2),
      store.deliveries.claimQueued(clientId, conn, 65535, hold('drain:b'), 2),
    ]);
    const claimed = [...a.messages, ...b.messages];
    expect(payloads(claimed).sort()).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    expect(new Set(claimed.map((m) => m.packetId)).size).toBe(6);
    // Each drain's messages are in queue order; the one that took the hold keeps the other out.
    for (const drain of [a, b]) expect(payloads(drain.messages)).toEqual([...payloads(drain.messages)].sort());
    const holder = a.messages.length > 0 ? 'drain:a' : 'drain:b';
    await store.deliveries.enqueue(message(clientId, 7));
    expect((await store.deliveries.claimQueued(clientId, conn, 65535, hold(holder === 'drain:a' ? 'drain:b' : 'drain:a'), 2)).messages).toEqual([]);
    expect(payloads((await store.deliveries.claimQueued(clientId, conn, 65535, hold(holder), 2)).messages)).toEqual(['m7']);
    expect(await store.deliveries.releaseHold(clientId, conn, holder, 65535)).toBe('released');
  });
});

describe('the queue', () => {
  it('[MQTT-4.9.0-2] Receive Maximum: no more in flight than the client accepts; a completion frees a slot for the queue', async () => {
    const clientId = uniqueClientId('rm');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 2, topicAliasMaximum: 0 });
    const [first] = await inFlight(conn, [message(clientId, 1), message(clientId, 2)], 2);
    expect(await store.deliveries.startDeliveries(clientId, conn, 2, [message(clientId, 3)])).toEqual(['queue']);

    // Full: queued, in order; and while anything is queued nothing overtakes it.
    expect(decided(await store.deliveries.enqueue(message(clientId, 3)))).toEqual({ queued: true });
    expect(decided(await store.deliveries.enqueue(message(clientId, 4)))).toEqual({ queued: true });
    expect((await store.deliveries.completeOutgoing(clientId, first!, 2)).queued).toBe(true);
    expect(await store.deliveries.startDeliveries(clientId, conn, 2, [message(clientId, 5)])).toEqual(['queue']);

    const claimed = await store.deliveries.claimQueued(clientId, conn, 2, { token: 'drain:test', leaseMs: HOLD_MS }, 25);
    expect(claimed.messages.map((m) => m.payload.toString())).toEqual(['m3']);
    expect(claimed.more).toBe(true);
    // Claimed is in flight, recorded in the same write.
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => m.payload.toString())).toEqual(['m2', 'm3']);
  });

  it('[MQTT-3.1.2-5] messages queued for an offline session wait for it, and only a connection holding it can claim them', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    await store.sessions.closeSession(clientId, conn, false, 3600);
    for (const n of [1, 2, 3]) await store.deliveries.enqueue({ clientId, topic, payload: Buffer.from(`m${n}`), qos: 2, retain: false });
    expect((await store.deliveries.claimQueued(clientId, conn, 10, { token: 'drain:test', leaseMs: HOLD_MS }, 25)).messages).toEqual([]);

    const next = connectionId();
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    const claimed = await store.deliveries.claimQueued(clientId, next, 10, { token: connectHold(next), leaseMs: HOLD_MS }, 25);
    expect(claimed.messages.map((m) => [m.payload.toString(), m.packetId, m.qos])).toEqual([
      ['m1', 1, 2],
      ['m2', 2, 2],
      ['m3', 3, 2],
    ]);
    expect(claimed.more).toBe(false);
  });

  it('drains oldest first, in rounds of the batch asked for, however many rounds it takes', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    await store.sessions.closeSession(clientId, conn, false, 3600);
    for (let n = 1; n <= 7; n++) await store.deliveries.enqueue(message(clientId, n));
    const next = connectionId();
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    const claimed = await store.deliveries.claimQueued(clientId, next, 65535, hold(connectHold(next)), 3);
    expect(payloads(claimed.messages)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    // Each round's run starts a block of packet ids (the last, a single message, follows on).
    expect(claimed.messages.map((m) => m.packetId)).toEqual([1, 2, 3, 16, 17, 18, 19]);
    expect(claimed.more).toBe(false);
  });

  it('[MQTT-3.3.2-5] a queued message past its expiry is dropped by the claim, not put in flight', async () => {
    let now = Date.now();
    const clocked = fixture.storeAt(() => now);
    const clientId = uniqueClientId('expired-queued');
    const conn = connectionId();
    await clocked.sessions.openSession({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    await clocked.sessions.closeSession(clientId, conn, false, 3600);
    await clocked.deliveries.enqueue({ ...message(clientId, 1), expiresAtMs: now + 5_000 });
    await clocked.deliveries.enqueue(message(clientId, 2));
    now += 6_000;
    const next = connectionId();
    await clocked.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    const claimed = await clocked.deliveries.claimQueued(clientId, next, 65535, hold(connectHold(next)), CLAIM_BATCH);
    expect(claimed.messages.map((m) => [m.payload.toString(), m.packetId])).toEqual([['m2', 1]]);
    expect(payloads(await clocked.deliveries.listOutgoing(clientId))).toEqual(['m2']);
    // Nothing is left queued: the hold lets go.
    expect(await clocked.deliveries.releaseHold(clientId, next, connectHold(next), 65535)).toBe('released');
  });

  it('enqueue reports the session as the queue left it: its connection, messages in flight, Receive Maximum and hold', async () => {
    const clientId = uniqueClientId('facts');
    const conn = connectionId();
    const before = Date.now();
    await store.sessions.openSession({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 3, topicAliasMaximum: 0 });
    // The CONNECT holds the session: the broker leaves the queue to it.
    const whileConnecting = await store.deliveries.enqueue(message(clientId, 1));
    expect(whileConnecting).toEqual({ queued: true, session: { connectionId: conn, inFlight: 0, receiveMaximum: 3, heldUntil: expect.any(Number) } });
    expect(whileConnecting.queued && whileConnecting.session!.heldUntil).toBeGreaterThanOrEqual(before + HOLD_MS);
    expect(decided(whileConnecting)).toEqual({ queued: true });
    const claimed = await store.deliveries.claimQueued(clientId, conn, 3, hold(connectHold(conn)), CLAIM_BATCH);
    expect(payloads(claimed.messages)).toEqual(['m1']);
    expect(await store.deliveries.releaseHold(clientId, conn, connectHold(conn), 3)).toBe('released');

    // Connected, nobody holding it, room for two more: whoever queued drains.
    expect(await store.deliveries.enqueue(message(clientId, 2))).toEqual({ queued: true, session: { connectionId: conn, inFlight: 1, receiveMaximum: 3 } });
    // Away: nobody to drain to.
    await store.sessions.closeSession(clientId, conn, false, 3600);
    expect(await store.deliveries.enqueue(message(clientId, 3))).toEqual({ queued: true, session: { inFlight: 1, receiveMaximum: 3 } });
  });

  it('enqueue keeps nothing for a session that is gone or past its expiry', async () => {
    let now = Date.now();
    const clocked = fixture.storeAt(() => now);
    const clientId = uniqueClientId('expired-enqueue');
    const conn = connectionId();
    expect(await clocked.deliveries.enqueue(message(clientId, 1))).toEqual({ queued: false });
    await clocked.sessions.openSession({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    await clocked.sessions.closeSession(clientId, conn, false, 10);
    expect(decided(await clocked.deliveries.enqueue(message(clientId, 1)), now)).toEqual({ queued: true });
    now += 11_000;
    expect(await clocked.deliveries.enqueue(message(clientId, 2))).toEqual({ queued: false });
  });
});

describe('in flight', () => {
  it('outgoing QoS 1 and 2 messages: put, PUBREC releases, PUBACK/PUBCOMP completes, each once', async () => {
    const clientId = uniqueClientId('qos-out');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    const qos1: OutgoingMessage = { clientId, topic: 'out/1', payload: Buffer.from('one'), qos: 1, retain: false, packetId: 1 };
    const qos2: OutgoingMessage = {
      clientId,
      topic: 'out/2',
      payload: Buffer.from([0, 1, 2, 255]),
      qos: 2,
      retain: true,
      packetId: 2,
      properties: { contentType: 'application/octet-stream', correlationData: Buffer.from('c'), userProperties: { k: 'v' } },
    };
    expect(await store.deliveries.releaseOutgoing(clientId, 1)).toBe(false);
    expect(await store.deliveries.completeOutgoing(clientId, 1, 65535)).toEqual({ queued: false });

    expect(await inFlight(conn, [qos1, qos2].map(({ packetId: _, ...message }) => message))).toEqual([1, 2]);
    expect(await store.deliveries.listOutgoing(clientId)).toEqual([
      { ...qos1, state: 'publish' },
      { ...qos2, state: 'publish' },
    ]);
    // QoS 1: PUBACK (again: nothing changes)
    await store.deliveries.completeOutgoing(clientId, 1, 65535);
    await store.deliveries.completeOutgoing(clientId, 1, 65535);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.packetId, m.state])).toEqual([[2, 'publish']]);
    // QoS 2: PUBREC, then PUBCOMP
    expect(await store.deliveries.releaseOutgoing(clientId, 2)).toBe(true);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.packetId, m.state])).toEqual([[2, 'pubrel']]);
    await store.deliveries.completeOutgoing(clientId, 2, 65535);
    expect(await store.deliveries.listOutgoing(clientId)).toEqual([]);
    await store.deliveries.completeOutgoing(clientId, 2, 65535);
    expect(await store.deliveries.releaseOutgoing(clientId, 2)).toBe(false);
  });

  it('listOutgoing gives the messages in flight in the order they went, whether started or claimed from the queue', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    await store.sessions.closeSession(clientId, conn, false, 3600);
    await store.deliveries.enqueue(message(clientId, 1));
    const next = connectionId();
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    await store.deliveries.claimQueued(clientId, next, 65535, hold(connectHold(next)), CLAIM_BATCH);
    expect(await store.deliveries.releaseHold(clientId, next, connectHold(next), 65535)).toBe('released');
    await inFlight(next, [message(clientId, 2), message(clientId, 3)]);
    await inFlight(next, [message(clientId, 4)]);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.payload.toString(), m.packetId])).toEqual([
      ['m1', 1],
      ['m2', 16],
      ['m3', 17],
      ['m4', 18],
    ]);
    // [MQTT-4.3.3] once PUBREC is in, only the PUBREL is resent: the payload is let go.
    expect(await store.deliveries.releaseOutgoing(clientId, 16)).toBe(true);
    const [, released] = await store.deliveries.listOutgoing(clientId);
    expect({ state: released!.state, payload: released!.payload.length }).toEqual({ state: 'pubrel', payload: 0 });
  });

  it('[MQTT-4.9.0-2] setInFlight: a resumed session counts what it found in flight under its new Receive Maximum', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    expect(await inFlight(conn, [message(clientId, 1), message(clientId, 2)])).toEqual([1, 2]);
    await store.sessions.closeSession(clientId, conn, false, 3600);
    const next = connectionId();
    await connect({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, receiveMaximum: 2, topicAliasMaximum: 0 });
    await store.deliveries.setInFlight(clientId, (await store.deliveries.listOutgoing(clientId)).length);
    expect(await store.deliveries.startDeliveries(clientId, next, 2, [message(clientId, 3)])).toEqual(['queue']);
    expect(await store.deliveries.completeOutgoing(clientId, 1, 2)).toEqual({ queued: false });
    expect(await inFlight(next, [message(clientId, 3)], 2)).toEqual([17]);
  });
});

describe('in-flight shards', () => {
  it("a client's messages in flight are packed in blocks spread over partitions of their own, resent in order on resumption, and gone with its session", async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    // 50 in one run: ids 1..50, blocks 0..3 (15 ids to a block).
    const run = Array.from({ length: 50 }, (_, n) => n + 1);
    expect(await inFlight(conn, run.map((n) => message(clientId, n)))).toEqual(run);
    // Some from the queue too: a drain's transaction writes its records in the shards (a run of its own: block 5).
    await store.sessions.closeSession(clientId, conn, false, 3600);
    for (const n of [51, 52, 53]) await store.deliveries.enqueue(message(clientId, n));
    const next = connectionId();
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    expect((await store.deliveries.claimQueued(clientId, next, 65535, hold(connectHold(next)), CLAIM_BATCH)).messages.map((m) => m.packetId)).toEqual([76, 77, 78]);
    expect(await store.deliveries.releaseHold(clientId, next, connectHold(next), 65535)).toBe('released');
    expect(await store.deliveries.releaseOutgoing(clientId, 3)).toBe(true);

    // The session partition holds no record; every shard holds a block, consecutive blocks in consecutive shards.
    const placed = await clientItems(clientId);
    expect(placed.get(clientId)!.filter((sk) => sk.startsWith('out#'))).toEqual([]);
    const shards = [...placed.keys()].filter((key) => key !== clientId);
    expect(shards).toHaveLength(OUT_SHARDS);
    expect(shards.map((key) => placed.get(key)!)).toEqual([['out#0000'], ['out#0001', 'out#0005'], ['out#0002'], ['out#0003']]);

    // [MQTT-4.4.0-1] A resumed session finds every one of them, in the order they went.
    await store.sessions.closeSession(clientId, next, false, 3600);
    const third = connectionId();
    expect(await connect({ clientId, connectionId: third, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toMatchObject({ sessionPresent: true });
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.clientId, m.payload.toString(), m.packetId, m.state])).toEqual([
      ...run.map((n) => [clientId, n === 3 ? '' : `m${n}`, n, n === 3 ? 'pubrel' : 'publish']),
      ...[51, 52, 53].map((n) => [clientId, `m${n}`, n + 25, 'publish']),
    ]);

    // Ending the session leaves nothing of the client in the table.
    expect(await store.sessions.closeSession(clientId, third, true, 0)).toBe('closed');
    expect(await clientItems(clientId)).toEqual(new Map());
  });

  it('a session with more in flight than one transaction holds ends the long way, its shards emptied too; a clean start empties them', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    // 30 runs of two: a block each, more items than the closing transaction takes.
    await Promise.all(Array.from({ length: 30 }, (_, n) => inFlight(conn, [message(clientId, 2 * n), message(clientId, 2 * n + 1)])));
    expect((await clientItems(clientId)).size).toBe(1 + OUT_SHARDS);
    expect(await store.sessions.closeSession(clientId, conn, true, 0)).toBe('closed');
    expect(await clientItems(clientId)).toEqual(new Map());

    const again = await connectedWithSubscriptions();
    await inFlight(again.conn, [1, 2, 3].map((n) => message(again.clientId, n)));
    await store.sessions.closeSession(again.clientId, again.conn, false, 3600);
    const next = connectionId();
    expect(await connect({ clientId: again.clientId, connectionId: next, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits })).toMatchObject({ sessionPresent: false });
    expect(await store.deliveries.listOutgoing(again.clientId)).toEqual([]);
    expect([...(await clientItems(again.clientId)).keys()]).toEqual([again.clientId]);
  });

  it('a session that never claimed a packet id ends without reading its shards', async () => {
    const clientId = uniqueClientId('no-claims');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    const before = store.meter.snapshot();
    expect(await store.sessions.closeSession(clientId, conn, true, 0)).toBe('closed');
    // One query of the session partition, one transaction.
    expect(store.meter.snapshot().calls - before.calls).toBe(2);
    expect(await clientItems(clientId)).toEqual(new Map());
  });
});

describe('fan-in: many deliverers at once', () => {
  it('concurrent deliverers under a Receive Maximum: exactly as many start as fit, with distinct ids; the rest queue; none fails', async () => {
    const clientId = uniqueClientId('fanin');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 20, topicAliasMaximum: 0 });
    const starts = (await Promise.all(Array.from({ length: 60 }, (_, n) => store.deliveries.startDeliveries(clientId, conn, 20, [message(clientId, n)])))).flat();
    const ids = starts.flatMap((start) => (typeof start === 'object' ? [start.packetId] : []));
    expect(ids.length).toBe(20);
    expect(starts.filter((start) => start === 'queue').length).toBe(40);
    expect(new Set(ids).size).toBe(20);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => m.packetId).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
    // The count is exact: one completion frees exactly one slot.
    await store.deliveries.completeOutgoing(clientId, ids[0]!, 20);
    expect(await inFlight(conn, [message(clientId, 100), message(clientId, 101)], 20)).toEqual([expect.any(Number), Number.NaN]);
  });

  it('concurrent deliverers never make one another retry: 40 at once cost one claim and one batch write each', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    const before = store.meter.snapshot();
    const ids = (await Promise.all(Array.from({ length: 40 }, (_, n) => inFlight(conn, [message(clientId, n)], 1000)))).flat();
    const after = store.meter.snapshot();
    expect(new Set(ids).size).toBe(40);
    expect(after.calls - before.calls).toBe(80);
  });

  it("a run of messages to one client costs one claim and one write per block of its records, sized by the block, no read; a refused claim costs one call", async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    const before = store.meter.snapshot();
    const ids = await inFlight(conn, Array.from({ length: 20 }, (_, n) => message(clientId, n)), 1000);
    const after = store.meter.snapshot();
    expect(ids).toEqual(Array.from({ length: 20 }, (_, n) => n + 1));
    // The claim, and blocks 0 (ids 1..15) and 1 (16..20): three calls and three write units (block
    // 0's fifteen small records are under 1 KB), not a unit per record.
    expect(after.calls - before.calls).toBe(3);
    expect(after.writeUnits - before.writeUnits).toBe(3);
    expect(after.readUnits - before.readUnits).toBe(0);
    // Their acknowledgements together: each block deleted in one call, and nothing else but the count (none here: 65535).
    const acked = store.meter.snapshot();
    await Promise.all(ids.map((id) => store.deliveries.completeOutgoing(clientId, id, 65535)));
    expect(store.meter.snapshot().calls - acked.calls).toBe(2);
    expect(await store.deliveries.listOutgoing(clientId)).toEqual([]);
    // Refused (another connection holds the session): why is in the refusal itself.
    const refused = store.meter.snapshot();
    expect(await store.deliveries.startDeliveries(clientId, 'another-connection', 1000, [message(clientId, 21)])).toEqual(['queue']);
    expect(store.meter.snapshot().calls - refused.calls).toBe(1);
  });

  it('[MQTT-2.2.1-3] after the packet counter wraps, an id still in flight is skipped, and its message kept', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    expect(await inFlight(conn, [message(clientId, 1)])).toEqual([1]);
    await fixture.documentClient.send(
      new UpdateCommand({ TableName: fixture.tables.sessions, Key: { clientId, sk: 'session' }, UpdateExpression: 'SET nextPacketId = :n', ExpressionAttributeValues: { ':n': 65533 } }),
    );
    // The run starts the next block, ids 1..3 again; 1 is still in flight and is replaced by a further id (16).
    expect(await inFlight(conn, [message(clientId, 2), message(clientId, 3), message(clientId, 4)])).toEqual([16, 2, 3]);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.payload.toString(), m.packetId])).toEqual([
      ['m1', 1],
      ['m2', 16],
      ['m3', 2],
      ['m4', 3],
    ]);
    // A drain wraps the same way: from 65535, 1..3 are in flight, 4 and 5 free.
    await store.deliveries.completeOutgoing(clientId, 16, 65535);
    await store.sessions.closeSession(clientId, conn, false, 3600);
    await fixture.documentClient.send(
      new UpdateCommand({ TableName: fixture.tables.sessions, Key: { clientId, sk: 'session' }, UpdateExpression: 'SET nextPacketId = :n', ExpressionAttributeValues: { ':n': 65535 } }),
    );
    await store.deliveries.enqueue(message(clientId, 5));
    await store.deliveries.enqueue(message(clientId, 6));
    const next = connectionId();
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    const claimed = await store.deliveries.claimQueued(clientId, next, 65535, hold(connectHold(next)), CLAIM_BATCH);
    expect(claimed.messages.map((m) => [m.payload.toString(), m.packetId])).toEqual([
      ['m5', 4],
      ['m6', 5],
    ]);
  });

  it('many handlers queueing for one client at once: all queued, none fails; a drain takes them all and the count comes back to zero', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    await store.sessions.closeSession(clientId, conn, false, 3600);
    const results = await Promise.all(Array.from({ length: 30 }, (_, n) => store.deliveries.enqueue(message(clientId, n), { messages: 1000 })));
    expect(results.every((r) => r.queued)).toBe(true);
    const next = connectionId();
    await store.sessions.openSession({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    const claimed = await store.deliveries.claimQueued(clientId, next, 65535, hold(connectHold(next)), CLAIM_BATCH);
    expect(payloads(claimed.messages).sort()).toEqual(Array.from({ length: 30 }, (_, n) => `m${n}`).sort());
    expect(await store.deliveries.releaseHold(clientId, next, connectHold(next), 65535)).toBe('released');
    const after = await inFlight(next, [message(clientId, 99)]);
    expect(after[0]).toBeGreaterThan(Math.max(...claimed.messages.map((m) => m.packetId)));
  });

  it('[MQTT-4.9.0-2] completions arriving together are written together, and free exactly the slots of the messages that were in flight', async () => {
    const clientId = uniqueClientId('completions');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 5, topicAliasMaximum: 0 });
    expect(await inFlight(conn, [1, 2, 3, 4, 5].map((n) => message(clientId, n)), 5)).toEqual([1, 2, 3, 4, 5]);
    const before = store.meter.snapshot();
    // A run of PUBACKs, one repeated and one for an id never used: per block a delete on condition
    // that no other record of it remains (block 0: 4 and 5 remain, so an update removing 1..3
    // follows; block 6, of 99, has no item), and one count update.
    const results = await Promise.all([1, 2, 3, 3, 99].map((id) => store.deliveries.completeOutgoing(clientId, id, 5)));
    expect(results).toEqual(Array.from({ length: 5 }, () => ({ queued: false })));
    expect(store.meter.snapshot().calls - before.calls).toBe(4);
    expect(payloads(await store.deliveries.listOutgoing(clientId))).toEqual(['m4', 'm5']);
    // Acknowledged again later: no slot freed twice.
    await store.deliveries.completeOutgoing(clientId, 1, 5);
    expect(await store.deliveries.startDeliveries(clientId, conn, 5, [6, 7, 8, 9].map((n) => message(clientId, n)))).toEqual([
      { packetId: 31 },
      { packetId: 32 },
      { packetId: 33 },
      'queue',
    ]);
    // Without a count (Receive Maximum 65535): the run's block is one delete.
    const open = await connectedWithSubscriptions();
    await inFlight(open.conn, [1, 2, 3].map((n) => message(open.clientId, n)));
    const uncounted = store.meter.snapshot();
    await Promise.all([1, 2, 3].map((id) => store.deliveries.completeOutgoing(open.clientId, id, 65535)));
    expect(store.meter.snapshot().calls - uncounted.calls).toBe(1);
    expect(await store.deliveries.listOutgoing(open.clientId)).toEqual([]);
  });

  it('a deliverer that dies between its claim and its records: the count it left too high is recounted once claims settle, and on reconnect', async () => {
    let now = Date.now();
    let failBatchWrite = false;
    const client = new DynamoDBClient({ endpoint: inject('dynamoDbEndpoint'), region: LOCAL_REGION, credentials: localCredentials });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        // The update that writes a block of records (SET), not the claim or an acknowledgement's.
        const input = args.input as { Key?: unknown; UpdateExpression?: string };
        const records = context.commandName === 'UpdateItemCommand' && JSON.stringify(input.Key).includes('out#') && input.UpdateExpression?.startsWith('SET ') === true;
        if (failBatchWrite && records) {
          failBatchWrite = false;
          throw new Error('injected: the handler died before its records');
        }
        return next(args);
      },
      { step: 'initialize', name: 'crashBeforeRecords' },
    );
    const crashing = createDynamoStore({ client: DynamoDBDocumentClient.from(client), tables: fixture.tables, now: () => now });
    const clientId = uniqueClientId('crash-claim');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 2, topicAliasMaximum: 0 }, crashing);
    failBatchWrite = true;
    await expect(crashing.deliveries.startDeliveries(clientId, conn, 2, [message(clientId, 1), message(clientId, 2)])).rejects.toThrow(/injected/);
    // Claimed, not recorded: nothing in flight, but the count says full.
    expect(await crashing.deliveries.listOutgoing(clientId)).toEqual([]);
    expect(await crashing.deliveries.startDeliveries(clientId, conn, 2, [message(clientId, 3)])).toEqual(['queue']);
    // Once no claim has been made for a while, a refused claim recounts the records and goes on.
    now += 31_000;
    expect(await crashing.deliveries.startDeliveries(clientId, conn, 2, [message(clientId, 3), message(clientId, 4), message(clientId, 5)])).toEqual([
      { packetId: 31 },
      { packetId: 32 },
      'queue',
    ]);
    // And a reconnect counts what it finds in flight.
    failBatchWrite = true;
    await crashing.deliveries.completeOutgoing(clientId, 31, 2);
    await expect(crashing.deliveries.startDeliveries(clientId, conn, 2, [message(clientId, 6)])).rejects.toThrow(/injected/);
    await crashing.sessions.closeSession(clientId, conn, false, 3600);
    const next = connectionId();
    await connect({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, receiveMaximum: 2, topicAliasMaximum: 0 }, crashing);
    await crashing.deliveries.setInFlight(clientId, (await crashing.deliveries.listOutgoing(clientId)).length);
    expect(await crashing.deliveries.startDeliveries(clientId, next, 2, [message(clientId, 7)])).toEqual([{ packetId: 34 }]);
    client.destroy();
  });
});
