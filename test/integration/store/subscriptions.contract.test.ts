/**
 * The SubscriptionStore's contract, against DynamoDB Local: which subscriptions a PUBLISH finds
 * (MQTT 5.0 section 4.7), read strongly consistently, and what finding them costs (it does not
 * grow with the subscriptions that do not match, nor with the topic's depth, nor with the topics
 * of a batch matching one filter); subscribing again replaces, unsubscribing says
 * what existed. Every test gets tables of its own, because a '#' or '+' subscription would
 * otherwise match the topics of the other tests.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Subscription } from '../../../shared/broker/ports';
import type { DynamoStore } from '../../../shared/store/create-dynamo-store';
import { createStoreFixture, described, inChunks, readCost, uniqueClientId, type StoreFixture } from '../store-fixture';

let fixture: StoreFixture;
let store: DynamoStore;

beforeEach(async () => {
  fixture = await createStoreFixture();
  store = fixture.store;
});

afterEach(async () => {
  await fixture.dispose();
});

/** Subscribes one client to filters at QoS 0. */
async function subscribe(clientId: string, ...filters: string[]): Promise<void> {
  await store.subscriptions.subscribe(
    clientId,
    filters.map((filter) => ({ clientId, filter, qos: 0 })),
  );
}

async function matches(topic: string): Promise<string[]> {
  return described(await store.subscriptions.findSubscriptions(topic));
}

/** The matching rules of MQTT 5.0 section 4.7, written out independently of the code under test. */
function referenceMatch(filter: string, topic: string): boolean {
  // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic starting with '$'
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // the parent level too: 'a/#' matches 'a'
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

describe('findSubscriptions', () => {
  it('an exact filter matches its own topic and nothing above, below or beside it', async () => {
    const a = uniqueClientId('exact-a');
    const b = uniqueClientId('exact-b');
    await subscribe(a, 'home/kitchen/temp');
    await subscribe(b, 'home/kitchen/humidity');

    expect(await matches('home/kitchen/temp')).toEqual([`${a} home/kitchen/temp`]);
    expect(await matches('home/kitchen/humidity')).toEqual([`${b} home/kitchen/humidity`]);
    expect(await matches('home/kitchen')).toEqual([]);
    expect(await matches('home/kitchen/temp/x')).toEqual([]);
    expect(await matches('Home/kitchen/temp')).toEqual([]); // topic names are case sensitive (4.7.3)
  });

  it('+ matches exactly one level (4.7.1.3), including an empty one', async () => {
    const c = uniqueClientId('plus');
    await subscribe(c, 'sport/tennis/+');

    expect(await matches('sport/tennis/player1')).toEqual([`${c} sport/tennis/+`]);
    expect(await matches('sport/tennis/player2')).toEqual([`${c} sport/tennis/+`]);
    expect(await matches('sport/tennis/')).toEqual([`${c} sport/tennis/+`]);
    expect(await matches('sport/tennis/player1/ranking')).toEqual([]);
    expect(await matches('sport/tennis')).toEqual([]);
    expect(await matches('sport/golf/player1')).toEqual([]);
  });

  it('# matches any number of levels, and the parent level itself (4.7.1.2)', async () => {
    const player = uniqueClientId('hash-player');
    const all = uniqueClientId('hash-all');
    const parent = uniqueClientId('hash-parent');
    await subscribe(player, 'sport/tennis/player1/#');
    await subscribe(all, '#');
    await subscribe(parent, 'a/#');

    expect(await matches('sport/tennis/player1')).toEqual([`${all} #`, `${player} sport/tennis/player1/#`].sort());
    expect(await matches('sport/tennis/player1/ranking')).toEqual([`${all} #`, `${player} sport/tennis/player1/#`].sort());
    expect(await matches('sport/tennis/player1/score/wimbledon')).toEqual([`${all} #`, `${player} sport/tennis/player1/#`].sort());
    expect(await matches('sport/tennis/player2')).toEqual([`${all} #`]);
    expect(await matches('sport/tennis')).toEqual([`${all} #`]);
    // 'a/#' matches 'a' itself
    expect(await matches('a')).toEqual([`${all} #`, `${parent} a/#`].sort());
    expect(await matches('a/b/c/d')).toEqual([`${all} #`, `${parent} a/#`].sort());
    expect(await matches('ab')).toEqual([`${all} #`]);
  });

  it("'+/+' and '/+' match a topic with a leading empty level, '+' does not", async () => {
    const twoLevels = uniqueClientId('plus-plus');
    const leadingSlash = uniqueClientId('slash-plus');
    const oneLevel = uniqueClientId('plus-one');
    await subscribe(twoLevels, '+/+');
    await subscribe(leadingSlash, '/+');
    await subscribe(oneLevel, '+');

    expect(await matches('/finance')).toEqual([`${twoLevels} +/+`, `${leadingSlash} /+`].sort());
    expect(await matches('finance')).toEqual([`${oneLevel} +`]);
    expect(await matches('finance/stock')).toEqual([`${twoLevels} +/+`]);
    expect(await matches('/')).toEqual([`${twoLevels} +/+`, `${leadingSlash} /+`].sort());
  });

  it("[MQTT-4.7.2-1] a '$' topic is not matched by a filter starting with a wildcard, but is by '$SYS/#'", async () => {
    const everything = uniqueClientId('sys-hash');
    const plusX = uniqueClientId('sys-plus-x');
    const sysAll = uniqueClientId('sys-all');
    const sysOne = uniqueClientId('sys-one');
    const sysExact = uniqueClientId('sys-exact');
    await subscribe(everything, '#');
    await subscribe(plusX, '+/x', '+/#');
    await subscribe(sysAll, '$SYS/#');
    await subscribe(sysOne, '$SYS/+');
    await subscribe(sysExact, '$SYS/x');

    expect(await matches('$SYS/x')).toEqual([`${sysAll} $SYS/#`, `${sysOne} $SYS/+`, `${sysExact} $SYS/x`].sort());
    expect(await matches('$SYS')).toEqual([`${sysAll} $SYS/#`]);
    expect(await matches('$SYS/x/y')).toEqual([`${sysAll} $SYS/#`]);
    // The same subscriptions do match an ordinary topic of the same shape.
    expect(await matches('SYS/x')).toEqual([`${everything} #`, `${plusX} +/#`, `${plusX} +/x`].sort());
  });

  it('returns every overlapping filter of one client, each once', async () => {
    const c = uniqueClientId('overlap');
    await subscribe(c, 'a/b', 'a/+', 'a/#', '+/b', '#');

    expect(await matches('a/b')).toEqual([`${c} #`, `${c} +/b`, `${c} a/#`, `${c} a/+`, `${c} a/b`].sort());
    expect(await matches('a/c')).toEqual([`${c} #`, `${c} a/#`, `${c} a/+`].sort());
  });

  it('agrees with the matching rules for every pair of a set of filters and topics', async () => {
    const filters = [
      '#', '+', '+/+', '/+', '/#', '+/#', 'a', 'a/b', 'a/+', 'a/#', 'a/b/c', 'a/+/c', 'a/+/+', 'a/b/#',
      'a/+/#', '+/b/#', '+/+/c', 'a//c', 'a/+/', '$SYS/#', '$SYS/+', '$SYS/uptime', 'b/#', '/a', '+/+/+/+',
    ];
    const topics = [
      'a', 'a/b', 'a/b/c', 'a/x/c', 'a/b/c/d', 'a//c', 'a/b/', '/a', '/', 'b', 'b/b', 'x/b/y/z', '$SYS',
      '$SYS/uptime', '$SYS/a/b', 'a/c/c', 'c',
    ];
    const owner = new Map(filters.map((filter, i) => [filter, `ref-${i}`]));
    await Promise.all(filters.map((filter) => subscribe(owner.get(filter)!, filter)));

    const actual = await Promise.all(topics.map(async (topic) => [topic, await matches(topic)] as const));
    const expected = topics.map(
      (topic) => [topic, filters.filter((filter) => referenceMatch(filter, topic)).map((filter) => `${owner.get(filter)} ${filter}`).sort()] as const,
    );
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
  });

  it('round-trips the subscription options: qos, noLocal, retainAsPublished, retainHandling', async () => {
    const c = uniqueClientId('options');
    const full: Subscription = { clientId: c, filter: 'opt/+/full', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 };
    const exact: Subscription = { clientId: c, filter: 'opt/x/full', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 1 };
    const bare: Subscription = { clientId: c, filter: 'opt/#', qos: 0 };
    await store.subscriptions.subscribe(c, [full, exact, bare]);

    const found = await store.subscriptions.findSubscriptions('opt/x/full');
    const byFilter = Object.fromEntries(found.map((s) => [s.filter, s]));
    expect(found).toHaveLength(3);
    expect(byFilter['opt/+/full']).toEqual(full);
    expect(byFilter['opt/x/full']).toEqual(exact);
    expect(byFilter['opt/#']).toEqual(bare);
  });
});

describe('subscribe and unsubscribe', () => {
  it('[MQTT-3.8.4-3] subscribing again to the same filter replaces the subscription', async () => {
    const c = uniqueClientId('replace');
    await store.subscriptions.subscribe(c, [
      { clientId: c, filter: 'rep/+', qos: 0 },
      { clientId: c, filter: 'rep/a', qos: 0 },
    ]);
    await store.subscriptions.subscribe(c, [
      { clientId: c, filter: 'rep/+', qos: 2, noLocal: true },
      { clientId: c, filter: 'rep/a', qos: 1 },
    ]);

    expect(await store.subscriptions.findSubscriptions('rep/a')).toEqual(
      expect.arrayContaining([
        { clientId: c, filter: 'rep/+', qos: 2, noLocal: true },
        { clientId: c, filter: 'rep/a', qos: 1 },
      ]),
    );
    expect(await store.subscriptions.findSubscriptions('rep/a')).toHaveLength(2);
    expect(await store.subscriptions.findSubscriptions('rep/b')).toEqual([{ clientId: c, filter: 'rep/+', qos: 2, noLocal: true }]);
  });

  it('unsubscribe reports whether each filter existed, and the filter stops matching for that client only', async () => {
    const c = uniqueClientId('unsub');
    const other = uniqueClientId('unsub-other');
    await subscribe(c, 'u/+/v', 'u/w');
    await subscribe(other, 'u/+/v');

    expect(await store.subscriptions.unsubscribe(c, ['u/+/v'])).toEqual([true]);
    expect(await matches('u/1/v')).toEqual([`${other} u/+/v`]);
    expect(await store.subscriptions.unsubscribe(c, ['u/+/v'])).toEqual([false]);
    expect(await matches('u/1/v')).toEqual([`${other} u/+/v`]);

    expect(await store.subscriptions.unsubscribe(c, ['u/w', 'never/subscribed'])).toEqual([true, false]);
    expect(await matches('u/w')).toEqual([]);
    expect(await store.subscriptions.unsubscribe(other, ['u/+/v'])).toEqual([true]);
    expect(await matches('u/1/v')).toEqual([]);
  });

  it('counts each filter in its marker and each wildcard shape in every copy of its group; removing the last subscription removes them', async () => {
    const a = uniqueClientId('gone-a');
    const b = uniqueClientId('gone-b');
    let found: Subscription[] = [];
    const untouched = await readCost(store, () => store.subscriptions.findSubscriptions('gone/a/x'));

    await subscribe(a, 'gone/+/x', 'gone/a/#', 'gone/a/x');
    await subscribe(b, 'gone/+/+/y', 'gone/+/x');
    await store.subscriptions.subscribe(a, [{ clientId: a, filter: 'gone/+/x', qos: 2 }]); // a replacement must not count twice
    expect(await fixture.indexEntries('gone')).toEqual(
      ['=gone L++L=1', '=gone L+L=2', '=gone LL#=1', 'm|gone/+/+/y=1', 'm|gone/+/x=2', 'm|gone/a/#=1', 'm|gone/a/x=1'].sort(),
    );
    const populated = await readCost(store, async () => (found = await store.subscriptions.findSubscriptions('gone/a/x')));
    expect(described(found)).toEqual([`${a} gone/+/x`, `${a} gone/a/#`, `${a} gone/a/x`, `${b} gone/+/x`].sort());
    expect(populated.calls).toBeGreaterThan(untouched.calls);

    expect(await store.subscriptions.unsubscribe(a, ['gone/+/x', 'gone/a/#', 'gone/a/x'])).toEqual([true, true, true]);
    expect(await fixture.indexEntries('gone')).toEqual(['=gone L++L=1', '=gone L+L=1', 'm|gone/+/+/y=1', 'm|gone/+/x=1'].sort());
    expect(await store.subscriptions.unsubscribe(b, ['gone/+/+/y', 'gone/+/x'])).toEqual([true, true]);

    expect(await fixture.indexEntries('gone')).toEqual([]);
    const emptied = await readCost(store, async () => (found = await store.subscriptions.findSubscriptions('gone/a/x')));
    expect(found).toEqual([]);
    expect(emptied.calls).toBe(untouched.calls);
  });

  it('finding subscribers reads nothing of the subscriptions that do not match: 300 more cost no more', async () => {
    const subscriber = uniqueClientId('dev7');
    await store.subscriptions.subscribe(subscriber, [{ clientId: subscriber, filter: 'dev/7/#', qos: 1 }]);
    let found: Subscription[] = [];
    const alone = await readCost(store, async () => (found = await store.subscriptions.findSubscriptions('dev/7/temp')));
    expect(described(found)).toEqual([`${subscriber} dev/7/#`]);
    expect(alone.calls).toBeGreaterThan(0);
    expect(alone.readUnits).toBeGreaterThan(0); // the meter does see DynamoDB Local's consumed capacity

    const noise: Subscription[] = [];
    for (let i = 0; noise.length < 150; i++) {
      if (i !== 7) noise.push({ clientId: uniqueClientId(`noise-dev-${i}`), filter: `dev/${i}/#`, qos: 1 });
    }
    for (let i = 0; i < 150; i++) noise.push({ clientId: uniqueClientId(`noise-other-${i}`), filter: `other/+/x${i}`, qos: 0 });
    await inChunks(noise, 25, (s) => store.subscriptions.subscribe(s.clientId, [s]));

    const crowded = await readCost(store, async () => (found = await store.subscriptions.findSubscriptions('dev/7/temp')));
    expect(described(found)).toEqual([`${subscriber} dev/7/#`]);
    expect(crowded.calls).toBe(alone.calls);
    expect(crowded.readUnits).toBe(alone.readUnits);

    // A subscription that does match is read: the measurement can tell the difference.
    const second = uniqueClientId('dev-any');
    await store.subscriptions.subscribe(second, [{ clientId: second, filter: 'dev/+/temp', qos: 0 }]);
    const matching = await readCost(store, async () => (found = await store.subscriptions.findSubscriptions('dev/7/temp')));
    expect(described(found)).toEqual([`${second} dev/+/temp`, `${subscriber} dev/7/#`].sort());
    expect(matching.calls).toBeGreaterThan(alone.calls);
  }, 300_000); // setting up 300 wildcard subscriptions writes ten items each (slow on a shared DynamoDB Local)

  it('a 7-level topic costs as many calls as a 3-level one: shapes, markers, one Query per matching filter', async () => {
    const c = uniqueClientId('depth');
    await subscribe(c, 'd3/+/c', 'd3/#', 'd7/b/c/d/e/+/g', 'd7/b/c/#');
    let found: Subscription[] = [];
    const shallow = await readCost(store, async () => (found = await store.subscriptions.findSubscriptions('d3/x/c')));
    expect(described(found)).toEqual([`${c} d3/#`, `${c} d3/+/c`]);
    const deep = await readCost(store, async () => (found = await store.subscriptions.findSubscriptions('d7/b/c/d/e/x/g')));
    expect(described(found)).toEqual([`${c} d7/b/c/#`, `${c} d7/b/c/d/e/+/g`]);
    // One BatchGetItem of shapes, one of markers, two Queries (the two matching filters), in three rounds.
    expect(shallow.calls).toBe(4);
    expect(deep.calls).toBe(shallow.calls);
  });

  it('a batch of 100 device topics matching one wildcard filter costs four calls: the filter is Queried once for all', async () => {
    const backend = uniqueClientId('backend');
    const run = uniqueClientId('run');
    await store.subscriptions.subscribe(backend, [{ clientId: backend, filter: `bench/${run}/fleet/+/telemetry`, qos: 1 }]);
    const topics = Array.from({ length: 100 }, (_, i) => `bench/${run}/fleet/${i}/telemetry`);
    let found = new Map<string, Subscription[]>();
    const batch = await readCost(store, async () => (found = await store.subscriptions.findSubscriptionsForTopics(topics)));
    expect([...found.keys()].sort()).toEqual([...topics].sort());
    for (const topic of topics) expect(described(found.get(topic)!)).toEqual([`${backend} bench/${run}/fleet/+/telemetry`]);
    // Shapes: 1 BatchGetItem; markers: 101 keys (each topic and the one wildcard filter), 2 BatchGetItems; 1 Query.
    expect(batch.calls).toBe(4);
    const one = await readCost(store, () => store.subscriptions.findSubscriptions(topics[0]!));
    expect(one.calls).toBe(3);
  });

  it('findSubscriptionsForTopics answers each topic apart, $ rule included, and a topic asked twice once', async () => {
    const c = uniqueClientId('many');
    await subscribe(c, '#', 'm1/+', '$SYS/#', 'm2/x');
    const found = await store.subscriptions.findSubscriptionsForTopics(['m1/a', 'm2/x', '$SYS/up', 'm3', 'm1/a']);
    expect(Object.fromEntries([...found].map(([topic, subs]) => [topic, described(subs)]))).toEqual({
      'm1/a': [`${c} #`, `${c} m1/+`],
      'm2/x': [`${c} #`, `${c} m2/x`],
      '$SYS/up': [`${c} $SYS/#`],
      m3: [`${c} #`],
    });
  });

  it('a subscription whose subscribe returned is found at once, from any copy of the shapes', async () => {
    // Each lookup reads one of the copies at random; every one of them must already hold the new shape.
    for (let i = 0; i < 12; i++) {
      const c = uniqueClientId(`fresh-${i}`);
      await subscribe(c, `fresh${i}/+/x/#`);
      for (let read = 0; read < 4; read++) expect(described(await store.subscriptions.findSubscriptions(`fresh${i}/a/x/b`))).toEqual([`${c} fresh${i}/+/x/#`]);
    }
  });

  it('a filter twice in one SUBSCRIBE: the later one counts, and existed for its second mention', async () => {
    const c = uniqueClientId('twice');
    expect(
      await store.subscriptions.subscribe(c, [
        { clientId: c, filter: 'twice/+', qos: 0 },
        { clientId: c, filter: 'twice/+', qos: 2 },
      ]),
    ).toEqual([false, true]);
    expect(await store.subscriptions.findSubscriptions('twice/x')).toEqual([{ clientId: c, filter: 'twice/+', qos: 2 }]);
    expect(await store.subscriptions.unsubscribe(c, ['twice/+', 'twice/+'])).toEqual([true, false]);
    expect(await store.subscriptions.findSubscriptions('twice/x')).toEqual([]);
  });

  it('subscriptionFilters lists the client\'s filters as sent, shared ones included, and only its own', async () => {
    const c = uniqueClientId('filters');
    const other = uniqueClientId('filters-other');
    expect(await store.subscriptions.subscriptionFilters(c)).toEqual([]);
    await store.subscriptions.subscribe(c, [
      { clientId: c, filter: 'f/a', qos: 0 },
      { clientId: c, filter: 'f/+', qos: 1, shareGroup: 'g1' },
    ]);
    await subscribe(other, 'f/b');
    expect((await store.subscriptions.subscriptionFilters(c)).sort()).toEqual(['$share/g1/f/+', 'f/a']);
    await store.subscriptions.unsubscribe(c, ['f/a']);
    expect(await store.subscriptions.subscriptionFilters(c)).toEqual(['$share/g1/f/+']);
  });

  it('a subscription\'s deny patterns are kept with it: the routing lookup and clientSubscriptions return them', async () => {
    const c = uniqueClientId('denials');
    const subscription = { clientId: c, filter: 'd/#', qos: 1 as const, denials: ['d/secret/#'] };
    await store.subscriptions.subscribe(c, [subscription, { clientId: c, filter: 'e/+', qos: 0, shareGroup: 'g' }]);
    expect(await store.subscriptions.findSubscriptions('d/x')).toEqual([subscription]);
    const stored = await store.subscriptions.clientSubscriptions(c);
    expect(stored.sort((a, b) => a.filter.localeCompare(b.filter))).toEqual([subscription, { clientId: c, filter: 'e/+', qos: 0, shareGroup: 'g' }]);
  });
});

describe('shared subscriptions', () => {
  it('are found with their share name, apart from a plain subscription to the same filter, and removed by the filter as sent', async () => {
    const a = uniqueClientId('share-a');
    const b = uniqueClientId('share-b');
    await store.subscriptions.subscribe(a, [
      { clientId: a, filter: 'jobs/+', qos: 1, shareGroup: 'workers' },
      { clientId: a, filter: 'jobs/+', qos: 0 },
    ]);
    await store.subscriptions.subscribe(b, [{ clientId: b, filter: 'jobs/+', qos: 2, shareGroup: 'workers' }]);
    const found = await store.subscriptions.findSubscriptions('jobs/1');
    expect(found).toHaveLength(3);
    expect(found).toEqual(
      expect.arrayContaining([
        { clientId: a, filter: 'jobs/+', qos: 1, shareGroup: 'workers' },
        { clientId: a, filter: 'jobs/+', qos: 0 },
        { clientId: b, filter: 'jobs/+', qos: 2, shareGroup: 'workers' },
      ]),
    );
    expect(await store.subscriptions.unsubscribe(a, ['$share/workers/jobs/+'])).toEqual([true]);
    expect(await store.subscriptions.findSubscriptions('jobs/1')).toEqual(
      expect.arrayContaining([
        { clientId: a, filter: 'jobs/+', qos: 0 },
        { clientId: b, filter: 'jobs/+', qos: 2, shareGroup: 'workers' },
      ]),
    );
    expect(await store.subscriptions.findSubscriptions('jobs/1')).toHaveLength(2);
  });
});
