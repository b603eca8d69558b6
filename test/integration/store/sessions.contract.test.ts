/**
 * The SessionStore's contract, against DynamoDB Local: what CONNECT, DISCONNECT, takeover and the
 * timers rely on. Opening a session claims it and names whoever held it; a clean start, a session
 * past its expiry and one bound to its connection start afresh; only the connection holding a
 * session detaches it, and doing so again is harmless; a session ends at its expiry unless a
 * connection holds it again. One set of tables for the file; every test uses its own client ids.
 */
import { describe, expect, it } from 'vitest';
import { connectHold, type BrokerStore, type OpenSessionRequest, type QueuedMessage } from '../../../shared/broker/ports';
import type { DynamoStore } from '../../../shared/store/create-dynamo-store';
import { described, inChunks, uniqueClientId, storeFixtureForFile } from '../store-fixture';
import { connect as connectOn, connectionId, HOLD_MS, HOUR_MS, inFlight as startInFlight, limits, NEVER_EXPIRES, subscribedClient } from './support';

const fixture = await storeFixtureForFile();
const store = fixture.store;

/** A store whose clock the test moves. */
function clockedStore(): { store: DynamoStore; advance(ms: number): void } {
  let now = Date.now();
  return { store: fixture.storeAt(() => now), advance: (ms) => void (now += ms) };
}

const connect = (request: OpenSessionRequest, target: BrokerStore = store) => connectOn(target, request);
const inFlight = (conn: string, messages: readonly QueuedMessage[], receiveMaximum = 65535) => startInFlight(store, conn, messages, receiveMaximum);
const connectedWithSubscriptions = (target: BrokerStore = store) => subscribedClient(target);

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

  it('[MQTT-3.1.2-4] Clean Start discards the old session: its subscriptions, routing index entries and QoS state', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    await store.receipts.receiveQos2(clientId, 9);
    const [packetId] = await inFlight(conn, [{ clientId, topic, payload: Buffer.from('x'), qos: 1, retain: false }]);
    await store.sessions.closeSession(clientId, conn, false, 3600);
    expect(await fixture.indexEntries(clientId)).toEqual([`=${clientId} L+=1`, `m|${clientId}/+=1`, `m|${topic}=1`]);

    expect(await connect({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits })).toEqual({ sessionPresent: false });
    expect(await store.subscriptions.findSubscriptions(topic)).toEqual([]);
    expect(await store.subscriptions.findSubscriptions(`${clientId}/other`)).toEqual([]);
    expect(await fixture.indexEntries(clientId)).toEqual([]);
    expect(await store.receipts.releaseIncomingQos2(clientId, 9)).toBe(false);
    expect(packetId).toBe(1);
    expect(await store.deliveries.listOutgoing(clientId)).toEqual([]);
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
    expect(await store.sessions.openSession({ clientId, connectionId: crashed, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toMatchObject({
      previousConnectionId: conn,
    });
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
    expect(await fixture.indexEntries(clientId)).toEqual([]);
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

  it('[MQTT-3.1.2-8] a clean start ends a session whose delayed will is pending: the will is handed back to publish, once', async () => {
    const clientId = uniqueClientId('clean-will');
    const conn = connectionId();
    const will = { topic: `${clientId}/will`, payload: Buffer.from('gone'), qos: 1 as const, retain: false, delayInterval: 300 };
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    await store.sessions.closeSession(clientId, conn, false, 3600);
    expect(await store.wills.scheduleWill(clientId, will, Date.now() + 300_000)).toBe(true);

    expect(await connect({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: false,
      endedSessionWill: will,
    });
    // Taken with the old session: the timers find no will to publish again.
    expect((await store.wills.claimDueWills(Date.now() + 600_000, 100, HOLD_MS)).filter((w) => w.clientId === clientId)).toEqual([]);
  });

  it('[MQTT-3.2.0-1] getSessions offers no connection while its CONNECT holds the session; once released, or once the hold lapses, it does', async () => {
    let now = Date.now();
    const clocked = fixture.storeAt(() => now);
    const clientId = uniqueClientId('connecting');
    const released = connectionId();
    await clocked.sessions.openSession({ clientId, connectionId: released, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    expect((await clocked.sessions.getSessions([clientId])).get(clientId)).toEqual({ clientId, protocolVersion: 5, ...limits });
    expect(await clocked.deliveries.releaseHold(clientId, released, connectHold(released), 65535)).toBe('released');
    expect((await clocked.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBe(released);

    // A CONNECT that died before releasing its hold: after the lease the connection is offered again.
    const died = connectionId();
    await clocked.sessions.openSession({ clientId, connectionId: died, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    expect((await clocked.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBeUndefined();
    now += HOLD_MS + 1_000;
    expect((await clocked.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBe(died);
  });
});

describe('session ownership', () => {
  const owned = async (owner: string) => {
    const clientId = uniqueClientId('owned');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, owner, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    await store.subscriptions.subscribe(clientId, [{ clientId, filter: `${clientId}/status`, qos: 1 }]);
    return { clientId, conn, topic: `${clientId}/status` };
  };

  it('a live session is claimed by its owner only: another identity (Clean Start 0 or 1) changes nothing', async () => {
    const { clientId, conn, topic } = await owned('alice');
    const will = { topic: `${clientId}/will`, payload: Buffer.from('gone'), qos: 1 as const, retain: false, delayInterval: 300 };
    await store.sessions.closeSession(clientId, conn, false, 3600);
    expect(await store.wills.scheduleWill(clientId, will, Date.now() + 300_000)).toBe(true);

    for (const cleanStart of [false, true]) {
      expect(await store.sessions.openSession({ clientId, connectionId: connectionId(), owner: 'mallory', protocolVersion: 5, cleanStart, holdMs: HOLD_MS, ...limits })).toBe(
        'owned-by-another',
      );
    }
    // Anonymous is another identity too.
    expect(await store.sessions.openSession({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits })).toBe('owned-by-another');

    // Untouched: still detached, still routed to; its owner resumes it.
    expect((await store.sessions.getSessions([clientId])).get(clientId)).toEqual({ clientId, protocolVersion: 5, ...limits });
    expect(described(await store.subscriptions.findSubscriptions(topic))).toEqual([`${clientId} ${topic}`]);
    expect(await connect({ clientId, connectionId: connectionId(), owner: 'alice', protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({ sessionPresent: true });
  });

  it('a connected session is not taken over by another identity: its connection keeps it', async () => {
    const { clientId, conn } = await owned('alice');
    expect(await store.sessions.openSession({ clientId, connectionId: connectionId(), owner: 'mallory', protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toBe(
      'owned-by-another',
    );
    expect((await store.sessions.getSessions([clientId])).get(clientId)?.connectionId).toBe(conn);
    expect(await store.sessions.closeSession(clientId, conn, false, 3600)).toBe('closed');
  });

  it('anonymous sessions cannot be told apart: another anonymous client resumes one', async () => {
    const clientId = uniqueClientId('anon');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    await store.sessions.closeSession(clientId, conn, false, 3600);
    expect(await connect({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({ sessionPresent: true });
  });

  it('an expired session belongs to nobody: another identity starts afresh with the client id', async () => {
    const clock = clockedStore();
    const clientId = uniqueClientId('owned-expired');
    const conn = connectionId();
    await connect({ clientId, connectionId: conn, owner: 'alice', protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits }, clock.store);
    await clock.store.sessions.closeSession(clientId, conn, false, 10);
    clock.advance(11_000);
    expect(await clock.store.sessions.openSession({ clientId, connectionId: connectionId(), owner: 'mallory', protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits })).toEqual({
      sessionPresent: false,
    });
  });
});

describe('closeSession', () => {
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

  it('a session ended by its connection leaves nothing behind: it is not resumed, nor found by its old routes', async () => {
    const { clientId, conn, topic } = await connectedWithSubscriptions();
    expect(await store.sessions.closeSession(clientId, conn, true, 0)).toBe('closed');
    // Redone (the caller died after ending it): still closed, still nothing.
    expect(await store.sessions.closeSession(clientId, conn, true, 0)).toBe('closed');
    expect(await store.sessions.getSessions([clientId])).toEqual(new Map());
    expect(await store.subscriptions.findSubscriptions(topic)).toEqual([]);
    expect(await store.subscriptions.subscriptionFilters(clientId)).toEqual([]);
  });
});

describe('endExpiredSessions', () => {
  it('an expired session is ended by the timer: state, routes and queue gone; a reconnected one is kept', async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const expired = uniqueClientId('exp');
    const back = uniqueClientId('back');
    for (const clientId of [expired, back]) {
      await store.sessions.openSession({ clientId, connectionId: `c-${clientId}`, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
      await store.subscriptions.subscribe(clientId, [{ clientId, filter: `${clientId}/+`, qos: 1 }]);
      await store.sessions.closeSession(clientId, `c-${clientId}`, false, 10);
      await store.deliveries.enqueue({ clientId, topic: `${clientId}/t`, payload: Buffer.from('q'), qos: 1, retain: false });
    }
    await store.sessions.openSession({ clientId: back, connectionId: 'c-again', protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits });
    now += 11_000;
    expect((await store.sessions.endExpiredSessions(now, 100, HOLD_MS)).ended).toBeGreaterThanOrEqual(1);
    expect([...(await store.sessions.getSessions([expired, back])).keys()]).toEqual([back]);
    expect(await store.subscriptions.findSubscriptions(`${expired}/t`)).toEqual([]);
    expect(await store.subscriptions.findSubscriptions(`${back}/t`)).toHaveLength(1);
    expect((await store.deliveries.claimQueued(back, 'c-again', 10, { token: connectHold('c-again'), leaseMs: HOLD_MS }, 25)).messages).toHaveLength(1);
  });

  it('ends a session only once, and not before its expiry', async () => {
    let now = Date.now();
    const clocked = fixture.storeAt(() => now);
    const clientId = uniqueClientId('exp-once');
    await clocked.sessions.openSession({ clientId, connectionId: `c-${clientId}`, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    await clocked.sessions.closeSession(clientId, `c-${clientId}`, false, 10);
    const mine = async () => (await clocked.sessions.getSessions([clientId])).has(clientId);
    now += 9_000;
    await clocked.sessions.endExpiredSessions(now, 100, HOLD_MS);
    expect(await mine()).toBe(true);
    now += 2_000;
    expect((await clocked.sessions.endExpiredSessions(now, 100, HOLD_MS)).ended).toBeGreaterThanOrEqual(1);
    expect(await mine()).toBe(false);
    // Nothing of it is left to end again (the timer index may still show it; its claim fails).
    const again = await clocked.sessions.endExpiredSessions(now, 100, HOLD_MS);
    expect(again.wills.filter((w) => w.clientId === clientId)).toEqual([]);
    // A new session under the same client id starts afresh.
    expect(await connect({ clientId, connectionId: connectionId(), protocolVersion: 5, cleanStart: false, holdMs: HOLD_MS, ...limits }, clocked)).toEqual({
      sessionPresent: false,
    });
  });
});
