/**
 * MQTT 5.0 topic aliases in both directions: the client's, within the Topic Alias Maximum the
 * broker announces; the broker's, within the client's own maximum.
 */
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { eventually } from '../../support/clients';
import { clientsFor, disconnect, expectClosedBy, payloads, publishesArrived, unique, type Doors } from './support';

const publish = (topic: string, payload: string, topicAlias?: number): IPublishPacket => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from(payload),
  qos: 0,
  dup: false,
  retain: false,
  ...(topicAlias !== undefined ? { properties: { topicAlias } } : {}),
});

export function describeTopicAliases(doors: Doors): void {
  const clients = clientsFor(doors);

  describe(`${doors.main.name}, MQTT 5.0: topic aliases`, () => {
    it('[MQTT-3.3.2-12] the broker accepts the aliases a client sets within its Topic Alias Maximum, and their new mappings', async (ctx) => {
      const c = clients(ctx);
      const root = unique('alias-in');
      const sub = await c.mqtt({ protocolVersion: 5 });
      await sub.client.subscribeAsync(`${root}/#`, { qos: 0 });
      const { raw, connack } = await c.rawConnected(5);
      const maximum = connack.properties?.topicAliasMaximum ?? 0;
      expect(maximum).toBeGreaterThanOrEqual(2);
      raw.send(
        publish(`${root}/one`, 'set 1', 1),
        publish('', 'by 1', 1),
        publish(`${root}/max`, 'set max', maximum),
        publish('', 'by max', maximum),
        // a new topic for an alias in use replaces its mapping
        publish(`${root}/two`, 'remap 1', 1),
        publish('', 'by 1 again', 1),
      );
      await eventually(() => sub.messages.length === 6, 'six messages');
      expect(sub.messages.map((m) => [m.topic, m.payload])).toEqual([
        [`${root}/one`, 'set 1'],
        [`${root}/one`, 'by 1'],
        [`${root}/max`, 'set max'],
        [`${root}/max`, 'by max'],
        [`${root}/two`, 'remap 1'],
        [`${root}/two`, 'by 1 again'],
      ]);
      expect(raw.closed).toBe(false);
    });

    it('(MQTT 5.0 3.3.4) a Topic Alias of 0 or above the Topic Alias Maximum is a protocol error: DISCONNECT 0x94', async (ctx) => {
      const c = clients(ctx);
      const zero = await c.rawConnected(5);
      const above = await c.rawConnected(5);
      const maximum = above.connack.properties?.topicAliasMaximum ?? 0;
      zero.raw.send(publish(unique('alias'), 'x', 0));
      above.raw.send(publish(unique('alias'), 'x', maximum + 1));
      await expectClosedBy(zero.raw, 5, 0x94);
      await expectClosedBy(above.raw, 5, 0x94);
    });

    it('(MQTT 5.0 3.3.4) an alias with an empty topic that was never set is a protocol error: DISCONNECT 0x82; [MQTT-3.3.2-7] mappings do not outlive their connection', async (ctx) => {
      const c = clients(ctx);
      const clientId = unique('alias-session');
      const topic = unique('alias-session');
      const never = await c.rawConnected(5);
      never.raw.send(publish('', 'x', 3));
      await expectClosedBy(never.raw, 5, 0x82);

      // the same session, a new network connection: the alias set on the last one means nothing
      const first = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      first.raw.send(publish(topic, 'set', 1));
      await disconnect(first.raw);
      const second = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(second.connack.sessionPresent).toBe(true);
      second.raw.send(publish('', 'by a stale alias', 1));
      await expectClosedBy(second.raw, 5, 0x82);
    });

    it('[MQTT-3.3.2-11] [MQTT-3.1.2-26] the broker aliases a repeated topic within the client\'s Topic Alias Maximum; [MQTT-3.1.2-27] never for a client without one', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('alias-out');
      const aliased = await c.rawConnected(5, { properties: { topicAliasMaximum: 2 } });
      const plain = await c.rawConnected(5);
      const viaMqttJs = await c.mqtt({ protocolVersion: 5, properties: { topicAliasMaximum: 2 } });
      for (const { raw } of [aliased, plain]) {
        raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
        await raw.next('suback');
      }
      await viaMqttJs.client.subscribeAsync(topic, { qos: 0 });

      // three PUBLISHes in one write: the broker handles them as one batch, and delivers each
      // subscriber's copies in one piece, where a repeated topic travels as an alias
      const { raw: publisher } = await c.rawConnected(5);
      publisher.send(publish(topic, 'p0'), publish(topic, 'p1'), publish(topic, 'p2'));

      const got = await publishesArrived(aliased.raw, 3);
      expect(payloads(got)).toEqual(['p0', 'p1', 'p2']);
      const aliases = got.map((p) => p.properties?.topicAlias);
      expect(aliases.every((alias) => alias === undefined || (alias >= 1 && alias <= 2))).toBe(true);
      // the first names the topic; a later one stands for it by an alias the first set
      expect(got[0]!.topic).toBe(topic);
      const byAlias = got.filter((p) => p.topic === '');
      expect(byAlias.length).toBeGreaterThanOrEqual(1);
      for (const p of byAlias) expect(got[0]!.properties?.topicAlias).toBe(p.properties?.topicAlias);

      const unaliased = await publishesArrived(plain.raw, 3);
      expect(unaliased.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([
        [topic, undefined],
        [topic, undefined],
        [topic, undefined],
      ]);
      // MQTT.js resolves the aliases back to the topic
      await eventually(() => viaMqttJs.messages.length === 3, 'three messages through MQTT.js');
      expect(viaMqttJs.messages.map((m) => [m.topic, m.payload])).toEqual([
        [topic, 'p0'],
        [topic, 'p1'],
        [topic, 'p2'],
      ]);
    });

    it('[MQTT-3.3.2-11] the listener aliases a topic on its first message, and later messages of other batches use the alias; beyond the client\'s maximum, topics go unaliased', async (ctx) => {
      const c = clients(ctx);
      const [first, second, third] = [unique('alias-first'), unique('alias-second'), unique('alias-third')];
      const { raw: subscriber } = await c.rawConnected(5, { properties: { topicAliasMaximum: 2 } });
      subscriber.send({ cmd: 'subscribe', messageId: 1, subscriptions: [first, second, third].map((topic) => ({ topic, qos: 0 as const })) });
      await subscriber.next('suback');
      const { raw: publisher } = await c.rawConnected(5);
      // One message at a time: each in a batch of its own
      const sent: Array<[string, string]> = [[first, 'a'], [first, 'b'], [second, 'c'], [third, 'd'], [second, 'e'], [third, 'f']];
      const got: IPublishPacket[] = [];
      for (const [topic, payload] of sent) {
        publisher.send(publish(topic, payload));
        got.push(...(await publishesArrived(subscriber, got.length + 1)).slice(got.length));
      }
      expect(got.map((p) => [p.topic, p.properties?.topicAlias, p.payload.toString()])).toEqual([
        [first, 1, 'a'],
        ['', 1, 'b'],
        [second, 2, 'c'],
        [third, undefined, 'd'],
        ['', 2, 'e'],
        [third, undefined, 'f'],
      ]);
    });
  });
}
