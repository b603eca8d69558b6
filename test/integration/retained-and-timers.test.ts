/**
 * Retained messages (the topic-level tree) and the timer index (delayed wills, session expiry)
 * against DynamoDB Local.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHold, type RetainedMessage } from '../../shared/broker/ports';
import { createStoreFixture, readCost, uniqueClientId, type StoreFixture } from './store-fixture';

let fixture: StoreFixture;

beforeAll(async () => {
  fixture = await createStoreFixture();
});

afterAll(async () => {
  await fixture.dispose();
});

const retained = (topic: string, payload = topic, extra: Partial<RetainedMessage> = {}): RetainedMessage => ({
  topic,
  payload: Buffer.from(payload),
  qos: 1,
  retain: true,
  ...extra,
});

/** The lease of holds and claims (the broker's, shared/broker/leases.ts). */
const HOLD_MS = 30_000;

const topicsOf = (messages: readonly RetainedMessage[]) => messages.map((m) => m.topic).sort();

describe('retained messages', () => {
  it('[MQTT-3.3.1-5] stored per topic, replaced by the next one, [MQTT-3.3.1-6] removed by an empty payload', async () => {
    const { store } = fixture;
    const root = uniqueClientId('ret');
    await store.retained.putRetained(retained(`${root}/a`, 'one'));
    expect((await store.retained.findRetained(`${root}/a`)).map((m) => m.payload.toString())).toEqual(['one']);
    await store.retained.putRetained(retained(`${root}/a`, 'two', { properties: { contentType: 'text/plain', correlationData: Buffer.from('c') } }));
    const [replaced] = await store.retained.findRetained(`${root}/a`);
    expect(replaced?.payload.toString()).toBe('two');
    expect(replaced?.properties).toEqual({ contentType: 'text/plain', correlationData: Buffer.from('c') });
    await store.retained.putRetained(retained(`${root}/a`, ''));
    expect(await store.retained.findRetained(`${root}/a`)).toEqual([]);
    // Removing what was never retained is harmless.
    await store.retained.putRetained(retained(`${root}/never`, ''));
  });

  it("[MQTT-4.7.1-2] '+' and [MQTT-4.7.1-1] '#' (parent level included) find retained messages by walking the tree", async () => {
    const { store } = fixture;
    const root = uniqueClientId('walk');
    const topics = [root, `${root}/a`, `${root}/a/b`, `${root}/a/b/c`, `${root}/x/b`, `${root}//b`, `${root}/a/`];
    for (const topic of topics) await store.retained.putRetained(retained(topic));

    expect(topicsOf(await store.retained.findRetained(`${root}/#`))).toEqual([...topics].sort());
    expect(topicsOf(await store.retained.findRetained(`${root}/+`))).toEqual([`${root}/a`]);
    expect(topicsOf(await store.retained.findRetained(`${root}/+/b`))).toEqual([`${root}//b`, `${root}/a/b`, `${root}/x/b`].sort());
    expect(topicsOf(await store.retained.findRetained(`${root}/a/+`))).toEqual([`${root}/a/`, `${root}/a/b`].sort());
    expect(topicsOf(await store.retained.findRetained(`${root}/a/#`))).toEqual([`${root}/a`, `${root}/a/`, `${root}/a/b`, `${root}/a/b/c`].sort());
    expect(topicsOf(await store.retained.findRetained(`${root}/+/b/#`))).toEqual([`${root}//b`, `${root}/a/b`, `${root}/a/b/c`, `${root}/x/b`].sort());
    expect(await store.retained.findRetained(`${root}/nothing/#`)).toEqual([]);
  });

  it('[MQTT-4.7.2-1] a filter starting with a wildcard does not match topics starting with $', async () => {
    const { store } = fixture;
    const tag = uniqueClientId('dollar');
    await store.retained.putRetained(retained(`$SYS/${tag}`));
    await store.retained.putRetained(retained(`${tag}/plain`));
    expect(topicsOf(await store.retained.findRetained('#')).filter((t) => t.includes(tag))).toEqual([`${tag}/plain`]);
    expect(topicsOf(await store.retained.findRetained('+/plain')).filter((t) => t.includes(tag))).toEqual([`${tag}/plain`]);
    expect(topicsOf(await store.retained.findRetained(`$SYS/+`)).filter((t) => t.includes(tag))).toEqual([`$SYS/${tag}`]);
  });

  it('[MQTT-3.3.2-5] an expired retained message is not returned', async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const root = uniqueClientId('expiry');
    await store.retained.putRetained(retained(`${root}/short`, 'x', { expiresAtMs: now + 10_000 }));
    await store.retained.putRetained(retained(`${root}/long`, 'y'));
    expect(topicsOf(await store.retained.findRetained(`${root}/#`))).toEqual([`${root}/long`, `${root}/short`]);
    now += 11_000;
    expect(topicsOf(await store.retained.findRetained(`${root}/#`))).toEqual([`${root}/long`]);
  });

  it('an exact filter costs one read, however many retained messages exist elsewhere', async () => {
    const { store } = fixture;
    const root = uniqueClientId('cost');
    for (let i = 0; i < 30; i++) await store.retained.putRetained(retained(`${root}/other/${i}`));
    await store.retained.putRetained(retained(`${root}/target`));
    const cost = await readCost(store, () => store.retained.findRetained(`${root}/target`));
    expect(cost.calls).toBe(1);
  });
});

describe('timers', () => {
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

  it('an expired session is ended by the timer: state, routes and queue gone; a reconnected one is kept', async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const limits = { receiveMaximum: 65535, topicAliasMaximum: 0 };
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
});
