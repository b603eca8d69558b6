/**
 * The WillStore's contract, against DynamoDB Local: delayed wills wait for their time
 * [MQTT-3.1.3-9]. A will is scheduled only while no connection holds the session; a due will is
 * claimed by one publisher at a time, again once the claim's lease has passed, and deleted when
 * published (only that one: a newer will stays).
 */
import { describe, expect, it } from 'vitest';
import { uniqueClientId, storeFixtureForFile } from '../store-fixture';
import { HOLD_MS } from './support';

const fixture = await storeFixtureForFile();

describe('delayed wills', () => {
  it('a delayed will is claimed once when due, and not before; claimed again if not completed within the lease; cancelling removes it', async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const clientId = uniqueClientId('will');
    const other = uniqueClientId('will-cancelled');
    const will = { topic: 'w/t', payload: Buffer.from('gone'), qos: 1 as const, retain: false, delayInterval: 5 };
    const limits = { receiveMaximum: 65535, topicAliasMaximum: 0 };
    for (const id of [clientId, other]) {
      await store.sessions.openSession({ clientId: id, connectionId: `c-${id}`, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
      // [MQTT-3.1.3-9] while a connection holds the session, a will is not scheduled
      expect(await store.wills.scheduleWill(id, will, now + 5_000)).toBe(false);
      await store.sessions.closeSession(id, `c-${id}`, false, 60);
      expect(await store.wills.scheduleWill(id, will, now + 5_000)).toBe(true);
    }
    await store.wills.cancelWill(other);

    const mine = <W extends { clientId: string }>(wills: W[]) => wills.filter((w) => w.clientId === clientId || w.clientId === other);
    expect(mine(await store.wills.claimDueWills(now, 100, HOLD_MS))).toEqual([]);
    now += 6_000;
    // The timer index is eventually consistent; DynamoDB Local applies it at once.
    const claimed = mine(await store.wills.claimDueWills(now, 100, HOLD_MS));
    expect(claimed).toEqual([{ clientId, will, id: String(now - 1_000) }]);
    expect(mine(await store.wills.claimDueWills(now, 100, HOLD_MS))).toEqual([]);
    // Its publisher died before completing it: once the lease has passed, it is claimed again.
    now += 31_000;
    expect(mine(await store.wills.claimDueWills(now, 100, HOLD_MS))).toEqual(claimed);
    await store.wills.completeWill(clientId, claimed[0]!.id);
    now += 31_000;
    expect(mine(await store.wills.claimDueWills(now, 100, HOLD_MS))).toEqual([]);
  });

  it('[MQTT-3.1.2-8] a delayed will still pending when its session ends is handed over for publishing then, once', async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const clientId = uniqueClientId('will-at-end');
    const will = { topic: 'w/end', payload: Buffer.from('gone'), qos: 1 as const, retain: false, delayInterval: 300 };
    await store.sessions.openSession({ clientId, connectionId: `c-${clientId}`, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, receiveMaximum: 65535, topicAliasMaximum: 0 });
    await store.sessions.closeSession(clientId, `c-${clientId}`, false, 1);
    // Due at the session's end, a moment after it, as settleWill computes it after closeSession.
    expect(await store.wills.scheduleWill(clientId, will, now + 1_005)).toBe(true);
    now += 1_001;
    const mine = <W extends { clientId: string }>(wills: W[]) => wills.filter((w) => w.clientId === clientId);
    expect(mine(await store.wills.claimDueWills(now, 100, HOLD_MS))).toEqual([]);
    expect(mine((await store.sessions.endExpiredSessions(now, 100, HOLD_MS)).wills)).toEqual([{ clientId, will, id: String(now + 4) }]);
    now += 10;
    expect(mine(await store.wills.claimDueWills(now, 100, HOLD_MS))).toEqual([]);
  });

  it('a will needs a session: none is scheduled for a client without one', async () => {
    const { store } = fixture;
    const will = { topic: 'w/none', payload: Buffer.from('gone'), qos: 0 as const, retain: false };
    expect(await store.wills.scheduleWill(uniqueClientId('no-session'), will, Date.now())).toBe(false);
  });

  it('a newer will replaces the scheduled one; completing the older one leaves the newer in place', async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const clientId = uniqueClientId('will-newer');
    const first = { topic: 'w/first', payload: Buffer.from('1'), qos: 1 as const, retain: false, delayInterval: 5 };
    const second = { topic: 'w/second', payload: Buffer.from('2'), qos: 1 as const, retain: false, delayInterval: 5 };
    await store.sessions.openSession({ clientId, connectionId: `c-${clientId}`, protocolVersion: 5, cleanStart: true, receiveMaximum: 65535, topicAliasMaximum: 0, holdMs: HOLD_MS });
    await store.sessions.closeSession(clientId, `c-${clientId}`, false, 3600);
    expect(await store.wills.scheduleWill(clientId, first, now + 5_000)).toBe(true);
    now += 6_000;
    const mine = <W extends { clientId: string }>(wills: W[]) => wills.filter((w) => w.clientId === clientId);
    const [claimed] = mine(await store.wills.claimDueWills(now, 100, HOLD_MS));
    expect(claimed?.will).toEqual(first);
    // Reconnected and gone again meanwhile: a new will is scheduled in its place.
    expect(await store.wills.scheduleWill(clientId, second, now + 5_000)).toBe(true);
    await store.wills.completeWill(clientId, claimed!.id);
    now += 6_000;
    expect(mine(await store.wills.claimDueWills(now, 100, HOLD_MS)).map((w) => w.will)).toEqual([second]);
  });
});
