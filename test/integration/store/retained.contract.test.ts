/**
 * The RetainedStore's contract, against DynamoDB Local: one retained message per topic
 * [MQTT-3.3.1-5], replaced by the next and removed by an empty payload; found by any filter that
 * matches its topic, wildcards included, by walking the topic-level tree (not a Scan), unexpired.
 */
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { RetainedMessage } from '../../../shared/broker/ports';
import { readCost, uniqueClientId, storeFixtureForFile } from '../store-fixture';

const fixture = await storeFixtureForFile();

const retained = (topic: string, payload = topic, extra: Partial<RetainedMessage> = {}): RetainedMessage => ({
  topic,
  payload: Buffer.from(payload),
  qos: 1,
  retain: true,
  ...extra,
});

const topicsOf = (messages: readonly RetainedMessage[]) => messages.map((m) => m.topic).sort();
const matching = async (filter: string): Promise<RetainedMessage[]> => (await fixture.store.retained.findRetained(filter)).messages;

describe('retained messages', () => {
  it('[MQTT-3.3.1-5] stored per topic, replaced by the next one, [MQTT-3.3.1-6] removed by an empty payload', async () => {
    const { store } = fixture;
    const root = uniqueClientId('ret');
    await store.retained.putRetained(retained(`${root}/a`, 'one'));
    expect((await matching(`${root}/a`)).map((m) => m.payload.toString())).toEqual(['one']);
    await store.retained.putRetained(retained(`${root}/a`, 'two', { properties: { contentType: 'text/plain', correlationData: Buffer.from('c') } }));
    const [replaced] = await matching(`${root}/a`);
    expect(replaced?.payload.toString()).toBe('two');
    expect(replaced?.properties).toEqual({ contentType: 'text/plain', correlationData: Buffer.from('c') });
    await store.retained.putRetained(retained(`${root}/a`, ''));
    expect(await matching(`${root}/a`)).toEqual([]);
    // Removing what was never retained is harmless.
    await store.retained.putRetained(retained(`${root}/never`, ''));
  });

  it("[MQTT-4.7.1-2] '+' and [MQTT-4.7.1-1] '#' (parent level included) find retained messages by walking the tree", async () => {
    const { store } = fixture;
    const root = uniqueClientId('walk');
    const topics = [root, `${root}/a`, `${root}/a/b`, `${root}/a/b/c`, `${root}/x/b`, `${root}//b`, `${root}/a/`];
    for (const topic of topics) await store.retained.putRetained(retained(topic));

    expect(topicsOf(await matching(`${root}/#`))).toEqual([...topics].sort());
    expect(topicsOf(await matching(`${root}/+`))).toEqual([`${root}/a`]);
    expect(topicsOf(await matching(`${root}/+/b`))).toEqual([`${root}//b`, `${root}/a/b`, `${root}/x/b`].sort());
    expect(topicsOf(await matching(`${root}/a/+`))).toEqual([`${root}/a/`, `${root}/a/b`].sort());
    expect(topicsOf(await matching(`${root}/a/#`))).toEqual([`${root}/a`, `${root}/a/`, `${root}/a/b`, `${root}/a/b/c`].sort());
    expect(topicsOf(await matching(`${root}/+/b/#`))).toEqual([`${root}//b`, `${root}/a/b`, `${root}/a/b/c`, `${root}/x/b`].sort());
    expect(await matching(`${root}/nothing/#`)).toEqual([]);
  });

  it('[MQTT-4.7.2-1] a filter starting with a wildcard does not match topics starting with $', async () => {
    const { store } = fixture;
    const tag = uniqueClientId('dollar');
    await store.retained.putRetained(retained(`$SYS/${tag}`));
    await store.retained.putRetained(retained(`${tag}/plain`));
    expect(topicsOf(await matching('#')).filter((t) => t.includes(tag))).toEqual([`${tag}/plain`]);
    expect(topicsOf(await matching('+/plain')).filter((t) => t.includes(tag))).toEqual([`${tag}/plain`]);
    expect(topicsOf(await matching(`$SYS/+`)).filter((t) => t.includes(tag))).toEqual([`$SYS/${tag}`]);
  });

  it('[MQTT-3.3.2-5] an expired retained message is not returned', async () => {
    let now = Date.now();
    const store = fixture.storeAt(() => now);
    const root = uniqueClientId('expiry');
    await store.retained.putRetained(retained(`${root}/short`, 'x', { expiresAtMs: now + 10_000 }));
    await store.retained.putRetained(retained(`${root}/long`, 'y'));
    expect(topicsOf((await store.retained.findRetained(`${root}/#`)).messages)).toEqual([`${root}/long`, `${root}/short`]);
    now += 11_000;
    expect(topicsOf((await store.retained.findRetained(`${root}/#`)).messages)).toEqual([`${root}/long`]);
  });

  it('an exact filter costs one read, however many retained messages exist elsewhere', async () => {
    const { store } = fixture;
    const root = uniqueClientId('cost');
    for (let i = 0; i < 30; i++) await store.retained.putRetained(retained(`${root}/other/${i}`));
    await store.retained.putRetained(retained(`${root}/target`));
    const cost = await readCost(store, () => matching(`${root}/target`));
    expect(cost.calls).toBe(1);
  });
  it('[MQTT-3.3.2-18] a retained message keeps its properties, user properties in their order', async () => {
    const { store } = fixture;
    const topic = `${uniqueClientId('props')}/p`;
    const properties = { contentType: 'text/plain', responseTopic: 'r/t', payloadFormatIndicator: true, userProperties: { z: '1', a: ['2', '3'], m: '4' } };
    await store.retained.putRetained(retained(topic, 'x', { qos: 2, properties }));
    const [found] = await matching(topic);
    expect(found).toEqual({ topic, payload: Buffer.from('x'), qos: 2, retain: true, properties });
    expect(Object.keys(found!.properties!.userProperties!)).toEqual(['z', 'a', 'm']);
  });
});

describe('a bounded replay', () => {
  it('reads at most `limit` nodes below the wildcards and says when it stopped with nodes left to look at; within the bound it is complete', async () => {
    const { store } = fixture;
    const root = uniqueClientId('bound');
    for (let i = 0; i < 8; i++) await store.retained.putRetained(retained(`${root}/${i}`));
    const bounded = await store.retained.findRetained(`${root}/#`, 5);
    expect(bounded.truncated).toBe(true);
    expect(bounded.messages.length).toBe(5);
    const plus = await store.retained.findRetained(`${root}/+`, 3);
    expect(plus).toMatchObject({ truncated: true });
    expect(plus.messages.length).toBe(3);
    // Room for the eight and a look below them: complete.
    const whole = await store.retained.findRetained(`${root}/#`, 9);
    expect(whole.truncated).toBe(false);
    expect(topicsOf(whole.messages)).toEqual(Array.from({ length: 8 }, (_, i) => `${root}/${i}`).sort());
    // An exact filter reads no children: the bound does not apply to it.
    expect((await store.retained.findRetained(`${root}/3`, 1)).messages.length).toBe(1);
  });
});

describe('pruning', () => {
  /** The tree nodes below a prefix (test-only reads of the table). */
  const childrenOf = async (prefix: string[]): Promise<string[]> => {
    const out = await fixture.documentClient.send(
      new QueryCommand({ TableName: fixture.tables.retained, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': `${prefix.length}|${prefix.join('/')}` } }),
    );
    return (out.Items ?? []).map((item) => String(item.sk).slice(1)).sort();
  };

  it('a cleared topic leaves no node behind, nor ancestors without message or children; nodes still in use stay', async () => {
    const { store } = fixture;
    const root = uniqueClientId('prune');
    await store.retained.putRetained(retained(`${root}/a/b/c`));
    await store.retained.putRetained(retained(`${root}/a/x`));
    await store.retained.putRetained(retained(`${root}/a/b/c`, ''));
    // c and b are gone; a stays (it has x)
    expect(await childrenOf([root, 'a'])).toEqual(['x']);
    expect(await childrenOf([root])).toEqual(['a']);
    await store.retained.putRetained(retained(`${root}/a/x`, ''));
    expect(await childrenOf([])).not.toContain(root);
    // A node that holds a message itself is kept when a topic below it is cleared.
    await store.retained.putRetained(retained(`${root}/m`));
    await store.retained.putRetained(retained(`${root}/m/n`));
    await store.retained.putRetained(retained(`${root}/m/n`, ''));
    expect(await childrenOf([root])).toEqual(['m']);
    expect((await store.retained.findRetained(`${root}/#`)).messages.map((m) => m.topic)).toEqual([`${root}/m`]);
  });

  it('a topic stored while its cleared sibling is pruned keeps its ancestors (a walk finds it)', async () => {
    const { store } = fixture;
    const root = uniqueClientId('prune-race');
    for (let round = 0; round < 10; round++) {
      await store.retained.putRetained(retained(`${root}/${round}/old`));
      await Promise.all([store.retained.putRetained(retained(`${root}/${round}/old`, '')), store.retained.putRetained(retained(`${root}/${round}/new`))]);
      expect(topicsOf((await store.retained.findRetained(`${root}/${round}/#`)).messages)).toEqual([`${root}/${round}/new`]);
      expect(topicsOf((await store.retained.findRetained(`${root}/+/new`)).messages)).toContain(`${root}/${round}/new`);
    }
  });
});
