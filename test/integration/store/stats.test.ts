/**
 * The counts the store makes for $SYS (routes and retained topics made and removed, counted in
 * memory where the store knows them), and the sharded counter items they are flushed to.
 */
import { describe, expect, it } from 'vitest';
import { BrokerStats } from '../../../shared/broker/stats';
import { createDynamoStore } from '../../../shared/store/create-dynamo-store';
import { DynamoStatsStore, STATS_SHARDS } from '../../../shared/store/dynamo-stats';
import { storeFixtureForFile, uniqueClientId } from '../store-fixture';
import { connect, connectionId, HOLD_MS, limits } from './support';

const fixture = await storeFixtureForFile();

function countedStore() {
  const statsStore = new DynamoStatsStore({ client: fixture.documentClient, table: fixture.tables.sessions });
  const stats = new BrokerStats(statsStore, { flushIntervalMs: 60_000 });
  return { stats, statsStore, store: createDynamoStore({ client: fixture.documentClient, tables: fixture.tables, stats }) };
}

describe('counted for $SYS', () => {
  it('subscriptions: routes made count up once (a repeat does not), unsubscribed and ended sessions count down', async () => {
    const { stats, store } = countedStore();
    const clientId = uniqueClientId('stats');
    const conn = connectionId();
    await connect(store, { clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
    await store.subscriptions.subscribe(clientId, [
      { clientId, filter: `${clientId}/a`, qos: 1 },
      { clientId, filter: `${clientId}/+`, qos: 0 },
      { clientId, filter: `${clientId}/c/#`, qos: 0 },
    ]);
    await store.subscriptions.subscribe(clientId, [{ clientId, filter: `${clientId}/a`, qos: 2 }]);
    expect(stats.pending().subscriptions).toBe(3);
    await store.subscriptions.unsubscribe(clientId, [`${clientId}/a`, `${clientId}/never`]);
    expect(stats.pending().subscriptions).toBe(2);
    await store.sessions.closeSession(clientId, conn, true, 0, { forgetConnection: true });
    expect(stats.pending().subscriptions ?? 0).toBe(0);
  });

  it('retained: a topic that gains a message counts up once (a replacement does not), one cleared counts down', async () => {
    const { stats, store } = countedStore();
    const topic = `${uniqueClientId('stats')}/retained`;
    const retained = (payload: string) => ({ topic, payload: Buffer.from(payload), qos: 0 as const, retain: true });
    await store.retained.putRetained(retained('one'));
    await store.retained.putRetained(retained('two'));
    expect(stats.pending().retained).toBe(1);
    await store.retained.putRetained(retained(''));
    await store.retained.putRetained(retained(''));
    expect(stats.pending().retained ?? 0).toBe(0);
  });
});

describe('the counter items', () => {
  it('a flush is one UpdateItem to one shard; the sums are one BatchGetItem over every shard', async () => {
    const statsStore = new DynamoStatsStore({ client: fixture.documentClient, table: fixture.tables.sessions });
    const before = await statsStore.totals();
    const flushes = 40;
    const calls = statsStore.meter.snapshot().calls;
    for (let i = 0; i < flushes; i++) await statsStore.add({ counts: { publishReceived: 2, connects: 1, deliveriesDropped: 5 }, latenciesMs: [1], startedAt: 1_000 + i });
    expect(statsStore.meter.snapshot().calls - calls).toBe(flushes);
    const totals = await statsStore.totals();
    expect(statsStore.meter.snapshot().calls - calls).toBe(flushes + Math.ceil(STATS_SHARDS / 100));
    expect(totals.counts.publishReceived - before.counts.publishReceived).toBe(2 * flushes);
    expect(totals.counts.connects - before.counts.connects).toBe(flushes);
    // The earliest start any flush reported, per shard: never later than the first.
    expect(totals.startedAt).toBeLessThanOrEqual(1_000 + flushes);
    // Metric-only counters are not stored.
    expect(Object.keys(totals.counts)).not.toContain('deliveriesDropped');
  });
});
