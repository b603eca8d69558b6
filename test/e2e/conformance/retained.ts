/**
 * Retained messages: stored, replaced, deleted by an empty payload, sent to new subscriptions
 * (wildcards included, never a '$' topic to a leading wildcard), and in 5.0 Retain Handling,
 * Retain As Published and message expiry.
 */
import { describe, expect, it } from 'vitest';
import { eventually, settle } from '../../support/clients';
import { clientsFor, payloads, unique, VERSIONS, versionName, type Doors, type Received } from './support';

/** The messages about one test's topics (a '#' subscription also sees other tests' retained messages). */
const about = (messages: readonly Received[], root: string): Received[] => messages.filter((m) => m.topic.includes(root));

export function describeRetained(doors: Doors): void {
  const clients = clientsFor(doors);

  for (const version of VERSIONS) {
    const v5 = version === 5;
    describe(`${doors.main.name}, ${versionName(version)}: retained messages`, () => {
      it(
        v5
          ? '[MQTT-3.3.1-5] [MQTT-3.3.1-9] a retained message is stored and sent to a new subscription with RETAIN 1; [MQTT-3.3.1-12] live copies have RETAIN 0'
          : '[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] a retained message is stored and sent to a new subscription with RETAIN 1; [MQTT-3.3.1-9] live copies have RETAIN 0',
        async (ctx) => {
          const c = clients(ctx);
          const topic = unique('retained');
          const { client: pub } = await c.mqtt({ protocolVersion: version });
          await pub.publishAsync(topic, 'kept', { qos: 1, retain: true });

          const sub = await c.mqtt({ protocolVersion: version });
          await sub.client.subscribeAsync(topic, { qos: 1 });
          await eventually(() => sub.messages.length === 1, 'the retained message');
          expect(sub.messages[0]).toMatchObject({ topic, payload: 'kept', qos: 1, retain: true });

          await pub.publishAsync(topic, 'live', { qos: 1, retain: true });
          await eventually(() => sub.messages.length === 2, 'the live message');
          expect(sub.messages[1]).toMatchObject({ payload: 'live', retain: false });
        },
      );

      it(
        v5
          ? '[MQTT-3.3.1-5] a retained message replaces the last; [MQTT-3.3.1-8] RETAIN 0 leaves it; [MQTT-3.3.1-6] [MQTT-3.3.1-7] an empty one deletes it and is still delivered'
          : '[MQTT-3.3.1-7] a retained message replaces the last; [MQTT-3.3.1-12] RETAIN 0 leaves it; [MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty one deletes it and is still delivered',
        async (ctx) => {
          const c = clients(ctx);
          const topic = unique('replace');
          const sentinel = unique('sentinel');
          const { client: pub } = await c.mqtt({ protocolVersion: version });
          await pub.publishAsync(sentinel, 'sentinel', { qos: 1, retain: true });
          await pub.publishAsync(topic, 'first', { qos: 0, retain: true });
          await pub.publishAsync(topic, 'second', { qos: 0, retain: true });
          await pub.publishAsync(topic, 'not retained', { qos: 1, retain: false });
          // QoS 0 has no acknowledgement: a QoS 1 publish behind them proves they were handled
          await pub.publishAsync(unique('barrier'), 'x', { qos: 1 });

          const replaced = await c.mqtt({ protocolVersion: version });
          await replaced.client.subscribeAsync(topic, { qos: 1 });
          await eventually(() => replaced.messages.length >= 1, 'the retained message');
          await settle(200);
          expect(payloads(replaced.messages)).toEqual(['second']);

          await pub.publishAsync(topic, '', { qos: 1, retain: true });
          // processed normally: the current subscriber receives the empty message
          await eventually(() => replaced.messages.length === 2, 'the empty message');
          expect(replaced.messages[1]).toMatchObject({ payload: '', retain: false });

          // a new subscription finds nothing retained on the topic; the sentinel shows replay works
          const late = await c.mqtt({ protocolVersion: version });
          await late.client.subscribeAsync([topic, sentinel], { qos: 1 });
          await eventually(() => late.messages.some((m) => m.topic === sentinel), 'the sentinel');
          await settle(300);
          expect(late.messages.map((m) => m.topic)).toEqual([sentinel]);
        },
      );

      it("[MQTT-4.7.2-1] retained messages go to '+' and '#' subscriptions too, but a leading wildcard never gets a '$' topic", async (ctx) => {
        const c = clients(ctx);
        const root = unique('rw');
        const dollar = `$${root}`;
        const { client: pub } = await c.mqtt({ protocolVersion: version });
        for (const topic of [root, `${root}/a`, `${root}/b/c`, `${dollar}/a`]) await pub.publishAsync(topic, topic, { qos: 1, retain: true });

        const subscribe = async (filter: string): Promise<Received[]> => {
          const sub = await c.mqtt({ protocolVersion: version });
          await sub.client.subscribeAsync(filter, { qos: 0 });
          return sub.messages;
        };
        const plusLevel = await subscribe(`${root}/+`);
        const subtree = await subscribe(`${root}/#`);
        const leadingPlus = await subscribe('+/a');
        const everything = await subscribe('#');
        const dollarTree = await subscribe(`${dollar}/+`);

        await eventually(
          () => about(subtree, root).length === 3 && about(everything, root).length === 3 && about(leadingPlus, root).length === 1 && dollarTree.length === 1,
          'the retained messages on every subscription',
        );
        await settle(300);
        const topics = (messages: Received[]): string[] => about(messages, root).map((m) => m.topic).sort();
        expect(topics(plusLevel)).toEqual([`${root}/a`]);
        // MQTT 3.1.1 and 5.0 section 4.7.1.2: '#' includes the parent level
        expect(topics(subtree)).toEqual([root, `${root}/a`, `${root}/b/c`].sort());
        expect(topics(leadingPlus)).toEqual([`${root}/a`]);
        expect(topics(everything)).toEqual([root, `${root}/a`, `${root}/b/c`].sort());
        expect(topics(dollarTree)).toEqual([`${dollar}/a`]);
        // (a leading wildcard also gets other tests' live messages, RETAIN 0: only this test's count)
        expect([plusLevel, subtree, leadingPlus, everything, dollarTree].flatMap((messages) => about(messages, root)).every((m) => m.retain)).toBe(true);
      });

      if (!v5) {
        it('[MQTT-3.8.4-3] subscribing again to the same filter sends the retained messages again', async (ctx) => {
          const c = clients(ctx);
          const topic = unique('resub');
          const { client: pub } = await c.mqtt({ protocolVersion: version });
          await pub.publishAsync(topic, 'kept', { qos: 1, retain: true });
          const sub = await c.mqtt({ protocolVersion: version });
          await sub.client.subscribeAsync(topic, { qos: 1 });
          await eventually(() => sub.messages.length === 1, 'the retained message');
          await sub.client.subscribeAsync(topic, { qos: 0 });
          await eventually(() => sub.messages.length === 2, 'the retained message again');
          expect(sub.messages.map((m) => [m.payload, m.retain, m.qos])).toEqual([['kept', true, 1], ['kept', true, 0]]);
        });
      }
    });
  }

  describe(`${doors.main.name}, MQTT 5.0: retained messages`, () => {
    it('[MQTT-3.3.1-9] [MQTT-3.8.4-4] Retain Handling 0 sends them on every SUBSCRIBE, [MQTT-3.3.1-10] 1 only for a new subscription, [MQTT-3.3.1-11] 2 never', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('rh');
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(topic, 'kept', { qos: 1, retain: true });

      const handling = async (rh: 0 | 1 | 2): Promise<Received[]> => {
        const sub = await c.mqtt({ protocolVersion: 5 });
        await sub.client.subscribeAsync(topic, { qos: 1, rh });
        await sub.client.subscribeAsync(topic, { qos: 1, rh });
        return sub.messages;
      };
      const [always, ifNew, never] = await Promise.all([handling(0), handling(1), handling(2)]);
      await eventually(() => always.length === 2 && ifNew.length === 1, 'the retained messages');
      await settle(300);
      expect(always.map((m) => [m.payload, m.retain])).toEqual([['kept', true], ['kept', true]]);
      expect(ifNew.map((m) => [m.payload, m.retain])).toEqual([['kept', true]]);
      expect(never).toEqual([]);
      // Retain Handling governs only the time of the SUBSCRIBE: live messages still flow
      await pub.publishAsync(topic, 'live', { qos: 1 });
      await eventually(() => never.length === 1, 'the live message on the Retain Handling 2 subscription');
    });

    it('[MQTT-3.3.1-13] Retain As Published keeps the RETAIN flag of live messages; [MQTT-3.3.1-12] without it RETAIN is 0', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('rap');
      const asPublished = await c.mqtt({ protocolVersion: 5 });
      const plain = await c.mqtt({ protocolVersion: 5 });
      await asPublished.client.subscribeAsync(topic, { qos: 1, rap: true });
      await plain.client.subscribeAsync(topic, { qos: 1, rap: false });
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(topic, 'retained', { qos: 1, retain: true });
      await pub.publishAsync(topic, 'plain', { qos: 1, retain: false });
      await eventually(() => asPublished.messages.length === 2 && plain.messages.length === 2, 'both messages on both subscriptions');
      expect(asPublished.messages.map((m) => [m.payload, m.retain])).toEqual([['retained', true], ['plain', false]]);
      expect(plain.messages.map((m) => [m.payload, m.retain])).toEqual([['retained', false], ['plain', false]]);
    });

    it('[MQTT-3.3.2-5] an expired retained message is not sent; [MQTT-3.3.2-6] a retained one carries the rest of its expiry interval', async (ctx) => {
      const c = clients(ctx);
      const root = unique('retained-expiry');
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      // Room for a loaded machine's CONNECT and SUBSCRIBE before the short one expires (at 2 s it
      // once expired first, with the suite running beside others); the wait for the late
      // subscriber counts from the PUBACKs, after which both messages are stored.
      await pub.publishAsync(`${root}/short`, 'short', { qos: 1, retain: true, properties: { messageExpiryInterval: 4 } });
      await pub.publishAsync(`${root}/long`, 'long', { qos: 1, retain: true, properties: { messageExpiryInterval: 60 } });
      // Both PUBACKed: both were stored by now, so 4.1 s from now both have waited longer than that.
      const stored = Date.now();
      const early = await c.mqtt({ protocolVersion: 5 });
      await early.client.subscribeAsync(`${root}/+`, { qos: 1 });
      await eventually(() => early.messages.length === 2, 'both retained messages before the short one expires', 4_000);

      await settle(Math.max(0, stored + 4_100 - Date.now()));
      const late = await c.mqtt({ protocolVersion: 5 });
      await late.client.subscribeAsync(`${root}/+`, { qos: 1 });
      await eventually(() => late.messages.length >= 1, 'the unexpired retained message');
      await settle(300);
      expect(payloads(late.messages)).toEqual(['long']);
      const remaining = late.messages[0]!.properties.messageExpiryInterval!;
      // 60 s less the time it waited (more than four seconds), rounded up
      expect(remaining).toBeLessThanOrEqual(56);
      expect(remaining).toBeGreaterThanOrEqual(45);
    });
  });
}
