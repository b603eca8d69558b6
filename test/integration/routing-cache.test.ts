/**
 * The RoutingCache against DynamoDB Local: the topics asked for in one turn, through one cache or
 * several, are looked up together (DynamoDB calls counted by the store's meter); a cleared cache
 * reads again and sees a subscription made meanwhile; a failed lookup is not kept.
 */
import { describe, expect, it } from 'vitest';
import type { BrokerStore, Subscription } from '../../shared/broker/ports';
import { newRoutingCache } from '../../shared/broker/context';
import { wrapEachPort } from '../../local/faults';
import { described, readCost, storeFixtureForFile, uniqueClientId } from './store-fixture';

const fixture = await storeFixtureForFile();
const store = fixture.store;

async function subscribe(clientId: string, filter: string): Promise<void> {
  await store.sessions.openSession({ clientId, connectionId: `${clientId}-conn`, protocolVersion: 5, cleanStart: true, holdMs: 30_000, receiveMaximum: 65535, topicAliasMaximum: 0 });
  await store.subscriptions.subscribe(clientId, [{ clientId, filter, qos: 1 } satisfies Subscription]);
}

describe('RoutingCache', () => {
  it('looks up 100 topics asked for at once with one findSubscriptionsForTopics and one getSessions: five calls', async () => {
    const backend = uniqueClientId('cache-backend');
    const run = uniqueClientId('cache-run');
    await subscribe(backend, `fleet/${run}/+/telemetry`);
    const topics = Array.from({ length: 100 }, (_, i) => `fleet/${run}/${i}/telemetry`);
    const cache = newRoutingCache();
    let routings: Awaited<ReturnType<typeof cache.get>>[] = [];
    const cost = await readCost(store, async () => (routings = await Promise.all(topics.map((topic) => cache.get(store, topic)))));
    for (const routing of routings) {
      expect(described(routing.subscriptions)).toEqual([`${backend} fleet/${run}/+/telemetry`]);
      expect(routing.sessions.get(backend)?.clientId).toBe(backend);
    }
    // Shapes 1, markers 2 (101 keys), the filter's Query 1, the sessions 1.
    expect(cost.calls).toBe(5);
    // Asked again: no read at all.
    const again = await readCost(store, () => Promise.all(topics.map((topic) => cache.get(store, topic))));
    expect(again.calls).toBe(0);
  });

  it('joins the lookups of several caches asked for in the same turn', async () => {
    const backend = uniqueClientId('cache-many');
    const run = uniqueClientId('cache-many-run');
    await subscribe(backend, `many/${run}/#`);
    const caches = Array.from({ length: 10 }, () => newRoutingCache());
    const cost = await readCost(store, () => Promise.all(caches.map((cache, i) => cache.get(store, `many/${run}/${i}`))));
    // Shapes 1, markers 1 (11 keys), the filter's Query 1, the sessions 1: as for one cache.
    expect(cost.calls).toBe(4);
  });

  it('prefetch starts the lookups a later get takes', async () => {
    const run = uniqueClientId('prefetch');
    const cache = newRoutingCache();
    const cost = await readCost(store, async () => {
      cache.prefetch(store, [`pre/${run}/a`, `pre/${run}/b`]);
      await cache.get(store, `pre/${run}/a`);
      await cache.get(store, `pre/${run}/b`);
    });
    // Shapes 1, markers 1; no subscriber, so no Query and no getSessions.
    expect(cost.calls).toBe(2);
  });

  it('reads again after clear(): a subscription made meanwhile is found', async () => {
    const run = uniqueClientId('clear');
    const topic = `clear/${run}/x`;
    const cache = newRoutingCache();
    expect((await cache.get(store, topic)).subscriptions).toEqual([]);
    const late = uniqueClientId('clear-late');
    await subscribe(late, `clear/${run}/+`);
    expect((await cache.get(store, topic)).subscriptions).toEqual([]); // the batch's own read, kept
    cache.clear();
    expect(described((await cache.get(store, topic)).subscriptions)).toEqual([`${late} clear/${run}/+`]);
  });

  it('does not keep a failed lookup: the next ask reads again', async () => {
    let fail = true;
    const flaky: BrokerStore = wrapEachPort(store, async (_port, method, call) => {
      if (fail && method === 'findSubscriptionsForTopics') throw new Error('injected');
      return call();
    });
    const cache = newRoutingCache();
    const topic = `flaky/${uniqueClientId('flaky')}`;
    await expect(cache.get(flaky, topic)).rejects.toThrow('injected');
    fail = false;
    expect((await cache.get(flaky, topic)).subscriptions).toEqual([]);
  });
});
