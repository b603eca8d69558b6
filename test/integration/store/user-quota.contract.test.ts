/**
 * Per-user counts, against DynamoDB Local. Sessions per user (MQTT_MAX_SESSIONS_PER_USER): a
 * session new to its owner is counted in the same write that creates it, and refused beyond the
 * bound without leaving anything behind; a session that ends, by its connection or at its expiry,
 * gives its room back; another owner's count is its own. Retained topics per user
 * (MQTT_MAX_RETAINED_PER_USER) and subscriptions per user (MQTT_MAX_SUBSCRIPTIONS_PER_USER): the
 * same, for topics that hold a retained message and for the filters of all of a user's sessions.
 */
import { describe, expect, it } from 'vitest';
import type { ConnectionRecord, OpenSessionRequest, RetainedMessage } from '../../../shared/broker/ports';
import { storeFixtureForFile, uniqueClientId } from '../store-fixture';
import { connectionId, HOLD_MS, limits } from './support';

const fixture = await storeFixtureForFile();

let users = 0;
const user = (name: string): string => `${name}-${process.pid}-${++users}`;

function request(owner: string, clientId: string, cleanStart: boolean, bound: number, withRecord = cleanStart): OpenSessionRequest {
  const conn = connectionId();
  const record: ConnectionRecord = { connectionId: conn, clientId, protocolVersion: 5, keepalive: 60, cleanStart, sessionExpiryInterval: 3600, connectedAt: Date.now(), username: owner, ...limits };
  return { clientId, connectionId: conn, owner, sessionsPerUser: bound, protocolVersion: 5, cleanStart, holdMs: HOLD_MS, ...limits, ...(withRecord ? { connection: record } : {}) };
}

describe('sessions per user', () => {
  it('a user holds at most its bound of sessions, new ones by Clean Start 1 or 0; the refused one leaves nothing; another user is not counted with it', async () => {
    const store = fixture.store;
    const alice = user('alice');
    const [a, b, c] = [uniqueClientId('qa'), uniqueClientId('qb'), uniqueClientId('qc')];
    expect(await store.sessions.openSession(request(alice, a, true, 2))).toMatchObject({ sessionPresent: false });
    // Clean Start 0 without a session creates one through the claim: counted too.
    expect(await store.sessions.openSession(request(alice, b, false, 2))).toMatchObject({ sessionPresent: false });
    for (const cleanStart of [true, false]) expect(await store.sessions.openSession(request(alice, c, cleanStart, 2))).toBe('quota-exceeded');
    expect([...(await store.sessions.getSessions([a, b, c])).keys()].sort()).toEqual([a, b].sort());
    // Her own sessions are hers to resume or take over, whatever the count.
    expect(await store.sessions.openSession(request(alice, b, false, 2))).toMatchObject({ sessionPresent: true });
    expect(await store.sessions.openSession(request(alice, a, true, 2))).toMatchObject({ sessionPresent: false });
    // Another user's count is its own.
    expect(await store.sessions.openSession(request(user('bob'), c, true, 2))).toMatchObject({ sessionPresent: false });
  });

  it('a session that ends with its connection, or at its expiry, gives its room back', async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const carol = user('carol');
    const [a, b, c] = [uniqueClientId('qe'), uniqueClientId('qf'), uniqueClientId('qg')];
    const first = request(carol, a, true, 2);
    await store.sessions.openSession(first);
    const second = request(carol, b, false, 2);
    await store.sessions.openSession(second);
    expect(await store.sessions.openSession(request(carol, c, true, 2))).toBe('quota-exceeded');

    // Ends with its connection: room for one.
    expect(await store.sessions.closeSession(a, first.connectionId, true, 0, { forgetConnection: true })).toBe('closed');
    const third = request(carol, c, true, 2);
    expect(await store.sessions.openSession(third)).toMatchObject({ sessionPresent: false });
    expect(await store.sessions.openSession(request(carol, a, true, 2))).toBe('quota-exceeded');

    // Expires: room for one more.
    await store.sessions.closeSession(b, second.connectionId, false, 10);
    now += 11_000;
    await store.sessions.endExpiredSessions(now, 100, HOLD_MS);
    expect(await store.sessions.openSession(request(carol, a, false, 2))).toMatchObject({ sessionPresent: false });
  });

  it("an expired session of another user, claimed by a user at its bound, is refused and left to end as it would have, its will with it", async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const [gina, hal] = [user('gina'), user('hal')];
    const shared = uniqueClientId('qx');
    const first = request(gina, shared, true, 1);
    await store.sessions.openSession(first);
    const will = { topic: `${shared}/will`, payload: Buffer.from('gone'), qos: 1 as const, retain: false, delayInterval: 3600 };
    await store.sessions.closeSession(shared, first.connectionId, false, 10);
    await store.wills.scheduleWill(shared, will, now + 3_600_000);
    await store.sessions.openSession(request(hal, uniqueClientId('qy'), true, 1));
    now += 11_000;
    expect(await store.sessions.openSession(request(hal, shared, false, 1))).toBe('quota-exceeded');
    // The sweep ends it as expired, its will published; gina's room comes back.
    const swept = await store.sessions.endExpiredSessions(now, 100, HOLD_MS);
    expect(swept.wills.filter((w) => w.clientId === shared).map((w) => w.will.topic)).toEqual([will.topic]);
    expect(await store.sessions.openSession(request(gina, uniqueClientId('qz'), true, 1))).toMatchObject({ sessionPresent: false });
  });

  it('sessions opened at once are counted exactly: 40 at once under a bound of 40 all open, the 41st is refused; under a bound of 3,000 (three shards) 40 at once all open', async () => {
    const store = fixture.store;
    for (const bound of [40, 3000]) {
      const fleet = user('fleet');
      const opened = await Promise.all(Array.from({ length: 40 }, () => store.sessions.openSession(request(fleet, uniqueClientId('dev'), true, bound))));
      expect(opened.filter((o) => o === 'quota-exceeded')).toEqual([]);
      if (bound === 40) expect(await store.sessions.openSession(request(fleet, uniqueClientId('dev'), true, bound))).toBe('quota-exceeded');
    }
  });
});

describe('retained topics per user', () => {
  const retained = (topic: string, payload = 'on'): RetainedMessage => ({ topic, payload: Buffer.from(payload), qos: 1, retain: true });
  const held = async (filter: string): Promise<string[]> => (await fixture.store.retained.findRetained(filter)).messages.map((m) => m.topic).sort();

  it('a user stores at most its bound of retained topics; replacing one is free, clearing one gives its room back; another user is not counted with it', async () => {
    const { retained: store } = fixture.store;
    const root = uniqueClientId('rq');
    const dave = { owner: user('dave'), bound: 2 };
    expect(await store.putRetained(retained(`${root}/a`), dave)).toBe('stored');
    expect(await store.putRetained(retained(`${root}/b/deeper`), dave)).toBe('stored');
    expect(await store.putRetained(retained(`${root}/c`), dave)).toBe('quota-exceeded');
    // An ancestor node without a message of its own is a new topic too.
    expect(await store.putRetained(retained(`${root}/b`), dave)).toBe('quota-exceeded');
    expect(await held(`${root}/#`)).toEqual([`${root}/a`, `${root}/b/deeper`]);
    // Replacing a topic's message is not a new topic, by anyone.
    expect(await store.putRetained(retained(`${root}/a`, 'again'), dave)).toBe('stored');
    expect(await store.putRetained(retained(`${root}/a`, 'theirs'), { owner: user('erin'), bound: 1 })).toBe('stored');
    // Another user's count is its own.
    expect(await store.putRetained(retained(`${root}/e`), { owner: user('erin'), bound: 1 })).toBe('stored');

    // Cleared (by anyone): the room goes back to whoever's count it was in.
    expect(await store.putRetained(retained(`${root}/a`, ''))).toBe('stored');
    expect(await store.putRetained(retained(`${root}/c`), dave)).toBe('stored');
    expect(await store.putRetained(retained(`${root}/d`), dave)).toBe('quota-exceeded');
    expect(await held(`${root}/#`)).toEqual([`${root}/b/deeper`, `${root}/c`, `${root}/e`]);
  });

  it('new topics stored at once are counted exactly: 30 at once under a bound of 20 store 20', async () => {
    const root = uniqueClientId('rq-many');
    const frank = { owner: user('frank'), bound: 20 };
    const results = await Promise.all(Array.from({ length: 30 }, (_, n) => fixture.store.retained.putRetained(retained(`${root}/${n}`), frank)));
    expect(results.filter((r) => r === 'stored')).toHaveLength(20);
    expect(await held(`${root}/+`)).toHaveLength(20);
  });
});

describe('subscriptions per user', () => {
  const sub = (clientId: string, filter: string) => ({ clientId, filter, qos: 1 as const });

  it('new subscriptions are counted across the user\'s sessions, as many as fit; unsubscribing, or a session ending, gives the room back', async () => {
    const store = fixture.store;
    const ivy = user('ivy');
    const bound = 3;
    const [a, b] = [request(ivy, uniqueClientId('sa'), true, 10), request(ivy, uniqueClientId('sb'), true, 10)];
    await store.sessions.openSession(a);
    await store.sessions.openSession(b);
    const first = await store.subscriptions.countNewSubscriptions(ivy, a.clientId, 2, bound);
    expect(first.admitted).toBe(2);
    await store.subscriptions.subscribe(a.clientId, [sub(a.clientId, 'x/1'), sub(a.clientId, 'x/2')], first.countedUnder);
    // Another session of the same user: one more fits, not two.
    const second = await store.subscriptions.countNewSubscriptions(ivy, b.clientId, 2, bound);
    expect(second.admitted).toBe(1);
    await store.subscriptions.subscribe(b.clientId, [sub(b.clientId, 'y/1')], second.countedUnder);
    expect((await store.subscriptions.countNewSubscriptions(ivy, b.clientId, 1, bound)).admitted).toBe(0);
    // Another user is counted apart.
    expect((await store.subscriptions.countNewSubscriptions(user('jay'), b.clientId, 3, bound)).admitted).toBe(3);

    // Unsubscribing one: room for one.
    expect(await store.subscriptions.unsubscribe(a.clientId, ['x/1'])).toEqual([true]);
    expect((await store.subscriptions.countNewSubscriptions(ivy, b.clientId, 2, bound)).admitted).toBe(1);
    // Session a ends with its connection, its subscription with it: room for one more.
    expect(await store.sessions.closeSession(a.clientId, a.connectionId, true, 0, { forgetConnection: true })).toBe('closed');
    expect((await store.subscriptions.countNewSubscriptions(ivy, b.clientId, 2, bound)).admitted).toBe(1);
  });

  it('a subscription rewritten from the stored list (a resumed session\'s new deny rules) stays in its count, and is counted out when it goes', async () => {
    const store = fixture.store;
    const kim = user('kim');
    const a = request(kim, uniqueClientId('sr'), true, 10);
    await store.sessions.openSession(a);
    const counted = await store.subscriptions.countNewSubscriptions(kim, a.clientId, 1, 1);
    await store.subscriptions.subscribe(a.clientId, [sub(a.clientId, 'z/#')], counted.countedUnder);
    const [stored] = await store.subscriptions.clientSubscriptions(a.clientId);
    expect(stored?.countedUnder).toBe(counted.countedUnder);
    await store.subscriptions.subscribe(a.clientId, [{ ...stored!, denials: ['z/secret/#'] }]);
    expect((await store.subscriptions.countNewSubscriptions(kim, a.clientId, 1, 1)).admitted).toBe(0);
    await store.subscriptions.unsubscribe(a.clientId, ['z/#']);
    expect((await store.subscriptions.countNewSubscriptions(kim, a.clientId, 1, 1)).admitted).toBe(1);
  });
});
