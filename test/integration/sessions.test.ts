/**
 * Sessions and QoS state in DynamoDB Local: what CONNECT, DISCONNECT, takeover and the QoS 1/2
 * flows rely on from the store. One set of tables for the file; every test uses its own client ids.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainAfterQueueing } from '../../shared/broker/delivery-policy';
import { connectHold, type EnqueueResult, type OpenSessionRequest, type OutgoingMessage, type QueuedMessage } from '../../shared/broker/ports';
import type { DynamoStore } from '../../shared/store/create-dynamo-store';
import { createStoreFixture, described, inChunks, uniqueClientId, type StoreFixture } from './store-fixture';

const NEVER_EXPIRES = 0xffffffff;
const HOUR_MS = 3_600_000;
/** The lease of holds and claims (the broker's, shared/broker/leases.ts). */
const HOLD_MS = 30_000;
/** What a client that sent no 5.0 limits accepts. */
const limits = { receiveMaximum: 65535, topicAliasMaximum: 0 };

let fixture: StoreFixture;
let store: DynamoStore;

beforeAll(async () => {
  fixture = await createStoreFixture();
  store = fixture.store;
});

afterAll(async () => {
  await fixture.dispose();
});

function connectionId(): string {
  return `conn-${randomBytes(6).toString('hex')}`;
}

/** What enqueue answered, and the broker's decision from it: drain now, on which connection (shared/broker/delivery-policy.ts). */
function decided(result: EnqueueResult, now = Date.now()): { queued: boolean; drainOn?: string } {
  const drainOn = result.queued ? drainAfterQueueing(result.session, now) : undefined;
  return { queued: result.queued, ...(drainOn ? { drainOn } : {}) };
}

/** A store whose clock the test moves. */
function clockedStore(): { store: DynamoStore; advance(ms: number): void } {
  let now = Date.now();
  return { store: fixture.storeAt(() => now), advance: (ms) => void (now += ms) };
}

/** What a CONNECT does to the session: claim it, and once CONNACK is out let deliveries start. */
async function connect(request: OpenSessionRequest, target = store) {
  const opened = await target.sessions.openSession(request);
  await target.deliveries.releaseHold(request.clientId, request.connectionId, connectHold(request.connectionId), request.receiveMaximum);
  return opened;
}

/** Messages put in flight to the client on `conn` (one transaction); their packet ids. */
async function inFlight(conn: string, messages: readonly QueuedMessage[], receiveMaximum = 65535): Promise<number[]> {
  const starts = await store.deliveries.startDeliveries(messages[0]!.clientId, conn, receiveMaximum, messages);
  return starts.map((start) => (typeof start === 'object' ? start.packetId : Number.NaN));
}

/** A client connected on a new connection, with one exact and one wildcard subscription under its own topic root. */
async function connectedWithSubscriptions(target = store): Promise<{ clientId: string; conn: string; topic: string }> {
  const clientId = uniqueClientId('sess');
  const conn = connectionId();
  await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits }, target);
  await target.subscriptions.subscribe(clientId, [
    { clientId, filter: `${clientId}/status`, qos: 1 },
    { clientId, filter: `${clientId}/+`, qos: 2 },
  ]);
  return { clientId, conn, topic: `${clientId}/status` };
}

describe('openSession and closeSession', () => {
  it('[MQTT-3.2.2-2] a new client gets no session present, and getSessions shows its connection', async () => {
    const clientId = uniqueClientId('new');
    const conn = connectionId();
    expect(await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits })).toEqual({ sessionPresent: false });

    const fresh = uniqueClientId('new-resume');
    // [MQTT-3.1.2-6] Clean Start 0 without a session creates one; Session Present is 0 [MQTT-3.2.2-3]
    expect(await connect({ clientId: fresh, connectionId: connectionId(), protocolVersion: 4, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: false,
    });

    const sessions = await store.sessions.getSessions([clientId, fresh, uniqueClientId('never-connected')]);
    expect([...sessions.keys()].sort()).toEqual([clientId, fresh].sort());
    expect(sessions.get(clientId)).toEqual({ clientId, connectionId: conn, protocolVersion: 5, ...limits });
    expect(sessions.get(fresh)?.protocolVersion).toBe(4);
  });

  it('[MQTT-3.1.2-5] a session kept after the connection closes is resumed with its subscriptions', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    await store.sessions.closeSession(clientId, conn, false, 3600);
    // Offline: the session is there, attached to no connection, and still routed to.
    expect((await store.sessions.getSessions([clientId])).get(clientId)).toEqual({ clientId, protocolVersion: 5, ...limits });
    expect(described(await store.subscriptions.findSubscriptions(topic))).toEqual([`${clientId} ${clientId}/+`, `${clientId} ${topic}`]);

    const next = connectionId();
    // Nobody held the session: no connection to take over.
    expect(await connect({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({ sessionPresent: true });
    expect((await store.sessions.getSessions([clientId])).get(clientId)).toEqual({ clientId, connectionId: next, protocolVersion: 5, ...limits });
    expect(described(await store.subscriptions.findSubscriptions(topic))).toEqual([`${clientId} ${clientId}/+`, `${clientId} ${topic}`]);
  });

  it('[MQTT-3.1.2-4] Clean Start discards the old session: its subscriptions, trie nodes and QoS state', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    await store.receipts.receiveQos2(clientId, 9);
    const [packetId] = await inFlight(conn, [{ clientId, topic, payload: Buffer.from('x'), qos: 1, retain: false }]);
    await store.sessions.closeSession(clientId, conn, false, 3600);
    expect(await fixture.nodeKeys(clientId)).toEqual([`n|${clientId}`, `n|${clientId}/+`]);

    expect(await connect({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits })).toEqual({ sessionPresent: false });
    expect(await store.subscriptions.findSubscriptions(topic)).toEqual([]);
    expect(await store.subscriptions.findSubscriptions(`${clientId}/other`)).toEqual([]);
    expect(await fixture.nodeKeys(clientId)).toEqual([]);
    expect(await store.receipts.releaseIncomingQos2(clientId, 9)).toBe(false);
    expect((await store.deliveries.completeOutgoing(clientId, packetId!, 65535)).found).toBe(false);
  });

  it('[MQTT-3.1.4-3] opening a session another connection holds names that connection (Clean Start 0)', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    const next = connectionId();
    expect(await connect({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: true,
      previousConnectionId: conn,
      previousProtocolVersion: 5,
    });
    expect((await store.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBe(next);
    expect(await store.subscriptions.findSubscriptions(topic)).toHaveLength(2);
  });

  it('[MQTT-3.1.4-3] opening a session another connection holds names that connection (Clean Start 1)', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    const next = connectionId();
    // The old connection must still be closed, even though its session state is discarded.
    expect(await connect({ clientId, connectionId: next, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: false,
      previousConnectionId: conn,
      previousProtocolVersion: 5,
    });
    expect((await store.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBe(next);
    expect(await store.subscriptions.findSubscriptions(topic)).toEqual([]);
  });

  it('[MQTT-3.1.2-6] a session that ends with its connection is not resumed by a connection that takes it over', async () => {
    const clientId = uniqueClientId('bound');
    const conn = connectionId();
    const topic = `${clientId}/status`;
    await connect({ clientId, connectionId: conn, protocolVersion: 4, cleanStart: true, holdMs: HOLD_MS, endsWithConnection: true, ...limits });
    await store.subscriptions.subscribe(clientId, [{ clientId, filter: topic, qos: 1 }]);
    await inFlight(conn, [{ clientId, topic, payload: Buffer.from('x'), qos: 1, retain: false }]);

    const next = connectionId();
    // Clean Session 0 on the new connection: the old connection is still named, so it is closed, but its session is gone.
    expect(await connect({ clientId, connectionId: next, protocolVersion: 4, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: false,
      previousConnectionId: conn,
      previousProtocolVersion: 4,
    });
    expect(await store.subscriptions.findSubscriptions(topic)).toEqual([]);
    expect(await store.deliveries.listOutgoing(clientId)).toEqual([]);
    // the new session is the new connection's, and it is resumable
    await store.sessions.closeSession(clientId, next, false, 3600);
    expect(await connect({ clientId, connectionId: connectionId(), protocolVersion: 4, cleanStart: false, holdMs: HOLD_MS, ...limits })).toMatchObject({ sessionPresent: true });
  });

  it('[MQTT-3.1.4-3] a takeover whose CONNECT died before closing the old connection: the next claim names that connection too', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    const crashed = connectionId();
    // The CONNECT on `crashed` claims the session from `conn`, then dies: `conn` was never closed,
    // and `crashed` is detached when the door reports it closed.
    expect((await store.sessions.openSession({ clientId, connectionId: crashed, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).previousConnectionId).toBe(conn);
    await store.sessions.closeSession(clientId, crashed, false, 3600);
    const next = connectionId();
    expect(await connect({ clientId, connectionId: next, protocolVersion: 4, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: true,
      earlierTakenOver: { connectionId: conn, protocolVersion: 5 },
    });
  });

  it('closing the taken-over connection leaves the new one attached, its session and subscriptions intact', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    const next = connectionId();
    await connect({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });

    // The old connection's disconnect arrives late (it is best-effort and unordered).
    await store.sessions.closeSession(clientId, conn, false, 60);
    expect((await store.sessions.getSessions([clientId])).get(clientId)).toEqual({ clientId, connectionId: next, protocolVersion: 5, ...limits });
    await store.sessions.closeSession(clientId, conn, true, 0);
    expect((await store.sessions.getSessions([clientId])).get(clientId)).toEqual({ clientId, connectionId: next, protocolVersion: 5, ...limits });
    expect(described(await store.subscriptions.findSubscriptions(topic))).toEqual([`${clientId} ${clientId}/+`, `${clientId} ${topic}`]);
    // Nor did it set an expiry on the session the new connection holds.
    expect((await fixture.storeAt(() => Date.now() + 2 * HOUR_MS).sessions.getSessions([clientId])).get(clientId)?.connectionId).toBe(next);
    expect(await inFlight(next, [{ clientId, topic, payload: Buffer.from('x'), qos: 1, retain: false }], 10)).toEqual([1]);
  });

  it('ending the session removes it, its subscriptions and its QoS state', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    await store.receipts.receiveQos2(clientId, 3);
    await store.sessions.closeSession(clientId, conn, true, 0);

    expect(await store.sessions.getSessions([clientId])).toEqual(new Map());
    expect(await store.subscriptions.findSubscriptions(topic)).toEqual([]);
    expect(await fixture.nodeKeys(clientId)).toEqual([]);
    expect(await store.deliveries.startDeliveries(clientId, conn, 10, [{ clientId, topic, payload: Buffer.from('x'), qos: 1, retain: false }])).toEqual(['queue']);
    expect(await store.deliveries.enqueue({ clientId, topic, payload: Buffer.from('x'), qos: 1, retain: false })).toEqual({ queued: false });
    expect(await store.receipts.releaseIncomingQos2(clientId, 3)).toBe(false);
    expect(await connect({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: false,
    });
  });

  it('getSessions omits a session past its expiry, though DynamoDB has not deleted it yet', async () => {
    const clock = clockedStore();
    const short = await connectedWithSubscriptions(clock.store);
    const forever = await connectedWithSubscriptions(clock.store);
    await clock.store.sessions.closeSession(short.clientId, short.conn, false, 10);
    await clock.store.sessions.closeSession(forever.clientId, forever.conn, false, NEVER_EXPIRES);

    clock.advance(5_000);
    expect([...(await clock.store.sessions.getSessions([short.clientId, forever.clientId])).keys()].sort()).toEqual(
      [short.clientId, forever.clientId].sort(),
    );
    clock.advance(6_000);
    expect([...(await clock.store.sessions.getSessions([short.clientId, forever.clientId])).keys()]).toEqual([forever.clientId]);
    clock.advance(365 * 24 * HOUR_MS);
    expect([...(await clock.store.sessions.getSessions([forever.clientId])).keys()]).toEqual([forever.clientId]);
  });

  it('[MQTT-3.1.2-6] [MQTT-3.2.2-3] an expired session is not resumed: Session Present 0 and its old subscriptions are gone', async () => {
    const clock = clockedStore();
    const { clientId, conn, topic } = await connectedWithSubscriptions(clock.store);
    await clock.store.receipts.receiveQos2(clientId, 11);
    await clock.store.sessions.closeSession(clientId, conn, false, 10);
    clock.advance(11_000);

    expect(await clock.store.sessions.openSession({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: false,
    });
    // The client was told it has no session, so it must not keep receiving on subscriptions it no longer knows of.
    expect(await clock.store.subscriptions.findSubscriptions(topic)).toEqual([]);
    expect(await clock.store.receipts.releaseIncomingQos2(clientId, 11)).toBe(false);
  });

  it('getSessions reads more sessions than one BatchGetItem can carry', async () => {
    const clientIds = Array.from({ length: 130 }, (_, i) => uniqueClientId(`many-${i}`));
    await inChunks(clientIds, 25, (clientId) =>
      store.sessions.openSession({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits }),
    );
    const sessions = await store.sessions.getSessions(clientIds);
    expect([...sessions.keys()].sort()).toEqual([...clientIds].sort());
  });
});

describe('the end of a connection', () => {
  const record = (clientId: string, conn: string) => ({
    connectionId: conn,
    clientId,
    protocolVersion: 5 as const,
    keepalive: 60,
    cleanStart: false,
    sessionExpiryInterval: 3600,
    connectedAt: Date.now(),
    will: { topic: `${clientId}/will`, payload: Buffer.from('gone'), qos: 1 as const, retain: false },
  });

  it('is claimed by one caller at a time, again once the lease has passed, and forgotten when deleted', async () => {
    let now = Date.now();
    const clocked = fixture.storeAt(() => now);
    const clientId = uniqueClientId('end');
    const conn = connectionId();
    await clocked.connections.putConnection(record(clientId, conn));
    // A DISCONNECT's changes are written with its claim, so whoever redoes the end sees them.
    const claimed = await clocked.connections.claimConnectionEnd(conn, HOLD_MS, { sessionExpiryInterval: 0, dropWill: true });
    expect(claimed).toMatchObject({ clientId, sessionExpiryInterval: 0 });
    expect(claimed?.will).toBeUndefined();
    expect(await clocked.connections.claimConnectionEnd(conn, HOLD_MS)).toBeUndefined();
    // The one who claimed it died half way: after the lease, the next report (or the sweeper) redoes it.
    now += 31_000;
    expect(await clocked.connections.claimConnectionEnd(conn, HOLD_MS)).toMatchObject({ clientId, sessionExpiryInterval: 0 });
    await clocked.connections.deleteConnection(conn);
    now += 31_000;
    expect(await clocked.connections.claimConnectionEnd(conn, HOLD_MS)).toBeUndefined();
  });

  it('closeSession redone by the connection that closed the session is "closed" again; another connection still "taken-over"', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    expect(await store.sessions.closeSession(clientId, conn, false, 3600)).toBe('closed');
    expect(await store.sessions.closeSession(clientId, conn, false, 3600)).toBe('closed');
    expect(await store.sessions.closeSession(clientId, connectionId(), false, 3600)).toBe('taken-over');
    const next = connectionId();
    await connect({ clientId, connectionId: next, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    expect(await store.sessions.closeSession(clientId, conn, false, 3600)).toBe('taken-over');
    expect((await store.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBe(next);
  });
});

describe('QoS state', () => {
  const message = (clientId: string, n: number, qos: 1 | 2 = 1): QueuedMessage => ({ clientId, topic: `${clientId}/t`, payload: Buffer.from(`m${n}`), qos, retain: false });

  it('[MQTT-2.2.1-3] startDeliveries hands out increasing packet ids to the connection holding the session, and none to others', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    expect(await inFlight(conn, [message(clientId, 1)], 100)).toEqual([1]);
    expect(await inFlight(conn, [message(clientId, 2), message(clientId, 3)], 100)).toEqual([2, 3]);
    expect(await store.deliveries.startDeliveries(clientId, 'another-connection', 100, [message(clientId, 4)])).toEqual(['queue']);
    const nobody = uniqueClientId('no-session');
    expect(await store.deliveries.startDeliveries(nobody, conn, 100, [message(nobody, 1)])).toEqual(['queue']);
    // Each one started is in flight, for a reconnecting client to get again.
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.packetId, m.payload.toString()])).toEqual([
      [1, 'm1'],
      [2, 'm2'],
      [3, 'm3'],
    ]);
  });

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

  it('[MQTT-4.9.0-2] startDeliveries starts messages while they fit under the Receive Maximum; the rest queue', async () => {
    const clientId = uniqueClientId('many');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 5, topicAliasMaximum: 0 });
    expect(await inFlight(conn, [1, 2, 3].map((n) => message(clientId, n)), 5)).toEqual([1, 2, 3]);
    const starts = await store.deliveries.startDeliveries(clientId, conn, 5, [4, 5, 6].map((n) => message(clientId, n)));
    expect(starts).toEqual([{ packetId: 4 }, { packetId: 5 }, 'queue']);
  });

  it('concurrent deliveries never share a packet id, and every one is recorded in flight', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    const ids = (await Promise.all(Array.from({ length: 40 }, (_, n) => inFlight(conn, [message(clientId, n)])))).flat();
    expect(new Set(ids).size).toBe(40);
    expect(ids.every((id) => id >= 1 && id <= 65535)).toBe(true);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => m.packetId).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
  });

  it('[MQTT-4.3.3] a QoS 2 delivery marked exactly once is made once, however often it is tried (in flight or queued)', async () => {
    const { clientId, conn } = await connectedWithSubscriptions();
    const publisher = uniqueClientId('once-pub');
    const once = (n: number) => ({ ...message(clientId, n, 2), once: { clientId: publisher, key: `${n}#x>${clientId}` } });
    expect(await inFlight(conn, [once(1), once(2)])).toEqual([1, 2]);
    // Routed again: 1 and 2 were made; 3 is new and starts (the messages around a duplicate still do).
    expect(await store.deliveries.startDeliveries(clientId, conn, 65535, [once(1), once(3), once(2)])).toEqual(['duplicate', { packetId: 3 }, 'duplicate']);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => m.payload.toString())).toEqual(['m1', 'm2', 'm3']);
    await store.sessions.closeSession(clientId, conn, false, 3600);
    expect(decided(await store.deliveries.enqueue(once(4)))).toEqual({ queued: true });
    expect(await store.deliveries.enqueue(once(4))).toEqual({ queued: false });
    expect(await store.deliveries.enqueue(once(1))).toEqual({ queued: false });
  });

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

  it('[MQTT-4.3.3-2] an incoming QoS 2 packet id is received once until released, and marked routed', async () => {
    const clientId = uniqueClientId('qos2-in');
    const first = await store.receipts.receiveQos2(clientId, 7);
    expect(first.routed).toBe(false);
    // A resend before routing finished (the handler died): the same receipt, to route again.
    expect(await store.receipts.receiveQos2(clientId, 7)).toEqual(first);
    await store.receipts.markQos2Routed(clientId, 7);
    expect(await store.receipts.receiveQos2(clientId, 7)).toEqual({ ...first, routed: true });
    expect((await store.receipts.receiveQos2(clientId, 8)).id).not.toBe(first.id);
    expect(await store.receipts.releaseIncomingQos2(clientId, 7)).toBe(true);
    expect(await store.receipts.releaseIncomingQos2(clientId, 7)).toBe(false);
    // After PUBREL the id is free for a new message, with a receipt of its own.
    const again = await store.receipts.receiveQos2(clientId, 7);
    expect(again.routed).toBe(false);
    expect(again.id).not.toBe(first.id);
  });

  it('two handlers racing on one incoming QoS 2 packet id get the same receipt', async () => {
    const clientId = uniqueClientId('qos2-race');
    const receipts = await Promise.all(Array.from({ length: 8 }, () => store.receipts.receiveQos2(clientId, 42)));
    expect(new Set(receipts.map((r) => r.id)).size).toBe(1);
  });

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
    expect((await store.deliveries.completeOutgoing(clientId, 1, 65535)).found).toBe(false);

    expect(await inFlight(conn, [qos1, qos2].map(({ packetId: _, ...message }) => message))).toEqual([1, 2]);
    expect(await store.deliveries.listOutgoing(clientId)).toEqual([
      { ...qos1, state: 'publish' },
      { ...qos2, state: 'publish' },
    ]);
    // QoS 1: PUBACK
    expect((await store.deliveries.completeOutgoing(clientId, 1, 65535)).found).toBe(true);
    expect((await store.deliveries.completeOutgoing(clientId, 1, 65535)).found).toBe(false);
    // QoS 2: PUBREC, then PUBCOMP
    expect(await store.deliveries.releaseOutgoing(clientId, 2)).toBe(true);
    expect((await store.deliveries.listOutgoing(clientId)).map((m) => [m.packetId, m.state])).toEqual([[2, 'pubrel']]);
    expect((await store.deliveries.completeOutgoing(clientId, 2, 65535)).found).toBe(true);
    expect((await store.deliveries.completeOutgoing(clientId, 2, 65535)).found).toBe(false);
    expect(await store.deliveries.releaseOutgoing(clientId, 2)).toBe(false);
  });
});
