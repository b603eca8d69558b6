/**
 * Subscriptions beyond a plain filter: overlapping subscriptions, 5.0 Subscription Identifiers,
 * No Local, and shared subscriptions ($share/{group}/{filter}).
 */
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { eventually, settle } from '../../support/clients';
import { clientsFor, disconnect, payloads, publishes, unique, VERSIONS, versionName, type Doors, type Received } from './support';

/** The Subscription Identifiers of a delivery, as a sorted list (their order is not significant). */
const identifiers = (m: Received | IPublishPacket): number[] => {
  const id = m.properties?.subscriptionIdentifier;
  return id === undefined ? [] : (Array.isArray(id) ? [...id] : [id]).sort((a, b) => a - b);
};

export function describeSubscriptions(doors: Doors): void {
  const clients = clientsFor(doors);

  for (const version of VERSIONS) {
    describe(`${doors.main.name}, ${versionName(version)}: overlapping subscriptions`, () => {
      it(`${version === 5 ? '[MQTT-3.3.4-2]' : '[MQTT-3.3.5-1]'} a message matching several of a client's subscriptions comes once, at the highest granted QoS`, async (ctx) => {
        const c = clients(ctx);
        const root = unique('overlap');
        const sub = await c.mqtt({ protocolVersion: version });
        await sub.client.subscribeAsync({ [`${root}/+`]: { qos: 0 }, [`${root}/#`]: { qos: 2 }, [`${root}/a`]: { qos: 1 } });
        const { client: pub } = await c.mqtt({ protocolVersion: version });
        await pub.publishAsync(`${root}/a`, 'x', { qos: 2 });
        await pub.publishAsync(`${root}/b`, 'y', { qos: 2 });
        await eventually(() => sub.messages.length >= 2, 'the messages');
        await settle(300);
        expect(sub.messages.map((m) => [m.topic, m.qos])).toEqual([
          [`${root}/a`, 2],
          [`${root}/b`, 2],
        ]);
      });
    });
  }

  describe(`${doors.main.name}: a new subscription is in effect from its SUBACK`, () => {
    it('a message published by another client right after the SUBACK of a new wildcard shape is delivered', async (ctx) => {
      const c = clients(ctx);
      // A first level of its own: the filters are the first of their shapes in their group.
      const root = unique('suback');
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      const sub = await c.mqtt({ protocolVersion: 5 });
      await sub.client.subscribeAsync({ [`${root}/a/b/+/d/e/f`]: { qos: 1 }, [`${root}/x`]: { qos: 1 } });
      await pub.publishAsync(`${root}/a/b/c/d/e/f`, 'deep', { qos: 0 });
      await pub.publishAsync(`${root}/x`, 'exact', { qos: 0 });
      await eventually(() => sub.messages.length >= 2, 'both messages');
      expect(sub.messages.map((m) => m.topic).sort()).toEqual([`${root}/a/b/c/d/e/f`, `${root}/x`]);
    });
  });

  describe(`${doors.main.name}, MQTT 5.0: subscription options`, () => {
    it('[MQTT-3.3.4-3] [MQTT-3.3.4-4] a delivery carries the Subscription Identifiers of every matching subscription, retained replays included', async (ctx) => {
      const c = clients(ctx);
      const root = unique('subid');
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(`${root}/kept`, 'retained', { qos: 1, retain: true });
      const sub = await c.mqtt({ protocolVersion: 5 });
      await sub.client.subscribeAsync(`${root}/+`, { qos: 1, properties: { subscriptionIdentifier: 7 } });
      await eventually(() => sub.messages.length === 1, 'the retained message');
      expect(identifiers(sub.messages[0]!)).toEqual([7]);
      await sub.client.subscribeAsync(`${root}/#`, { qos: 1, properties: { subscriptionIdentifier: 268_435_455 } });
      await sub.client.subscribeAsync(`${root}/x/y`, { qos: 1 });
      await eventually(() => sub.messages.length === 2, 'the retained message for the second subscription');
      expect(identifiers(sub.messages[1]!)).toEqual([268_435_455]);

      await pub.publishAsync(`${root}/a`, 'both', { qos: 1 });
      await pub.publishAsync(`${root}/x/y`, 'hash and plain', { qos: 1 });
      await eventually(() => sub.messages.length === 4, 'the live messages');
      expect(sub.messages.slice(2).map((m) => [m.payload, identifiers(m)])).toEqual([
        ['both', [7, 268_435_455]],
        // the subscription without an identifier adds none
        ['hash and plain', [268_435_455]],
      ]);
    });

    it('[MQTT-3.8.3-3] No Local: a client does not receive its own messages on such a subscription, others do', async (ctx) => {
      const c = clients(ctx);
      const quiet = unique('no-local');
      const echo = unique('local');
      const self = await c.mqtt({ protocolVersion: 5 });
      await self.client.subscribeAsync(quiet, { qos: 1, nl: true });
      await self.client.subscribeAsync(echo, { qos: 1, nl: false });
      const other = await c.mqtt({ protocolVersion: 5 });
      await other.client.subscribeAsync(quiet, { qos: 1 });
      await self.client.publishAsync(quiet, 'not to myself', { qos: 1 });
      await self.client.publishAsync(echo, 'to myself', { qos: 1 });
      await eventually(() => other.messages.length === 1 && self.messages.length >= 1, 'the deliveries');
      await settle(300);
      expect(payloads(self.messages)).toEqual(['to myself']);
      expect(payloads(other.messages)).toEqual(['not to myself']);
    });
  });

  describe(`${doors.main.name}, MQTT 5.0: shared subscriptions`, () => {
    it('(MQTT 5.0 4.8.2) each message goes to exactly one member of the group, spread over them; non-shared subscribers get every one', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('shared');
      const group = `$share/${unique('g')}/${topic}`;
      const members = await Promise.all([0, 1, 2].map(() => c.mqtt({ protocolVersion: 5 })));
      for (const m of members) await m.client.subscribeAsync(group, { qos: 1 });
      const plain = await c.mqtt({ protocolVersion: 5 });
      await plain.client.subscribeAsync(topic, { qos: 1 });
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      const sent = Array.from({ length: 30 }, (_, i) => `m${i}`);
      for (const payload of sent) await pub.publishAsync(topic, payload, { qos: 1 });

      const shared = (): Received[] => members.flatMap((m) => m.messages);
      await eventually(() => shared().length >= sent.length && plain.messages.length === sent.length, 'every message once in the group');
      await settle(300);
      expect(payloads(shared()).sort()).toEqual([...sent].sort());
      expect(members.filter((m) => m.messages.length > 0).length).toBeGreaterThanOrEqual(2);
      expect(payloads(plain.messages)).toEqual(sent);
    });

    it('(MQTT 5.0 4.8.2) when a member leaves, the others get every message; its kept session gets none of them', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('shared-leave');
      const group = `$share/${unique('g')}/${topic}`;
      const clientId = unique('leaver');
      const { raw: leaver } = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      leaver.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: group, qos: 1 }] });
      await leaver.next('suback');
      const stayers = await Promise.all([0, 1].map(() => c.mqtt({ protocolVersion: 5 })));
      for (const m of stayers) await m.client.subscribeAsync(group, { qos: 1 });
      await disconnect(leaver);

      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      const sent = Array.from({ length: 12 }, (_, i) => `m${i}`);
      for (const payload of sent) await pub.publishAsync(topic, payload, { qos: 1 });
      await eventually(() => stayers.flatMap((m) => m.messages).length >= sent.length, 'every message on the members still here');
      expect(payloads(stayers.flatMap((m) => m.messages)).sort()).toEqual([...sent].sort());

      const back = await c.rawConnected(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
      expect(back.connack.sessionPresent).toBe(true);
      await settle(400);
      expect(publishes(back.raw)).toEqual([]);
    });

    it('(MQTT 5.0 3.8.4) a shared subscription gets no retained messages when it is made', async (ctx) => {
      const c = clients(ctx);
      const topic = unique('shared-retained');
      const sentinel = unique('sentinel');
      const { client: pub } = await c.mqtt({ protocolVersion: 5 });
      await pub.publishAsync(topic, 'kept', { qos: 1, retain: true });
      await pub.publishAsync(sentinel, 'sentinel', { qos: 1, retain: true });
      const member = await c.mqtt({ protocolVersion: 5 });
      await member.client.subscribeAsync([`$share/${unique('g')}/${topic}`, sentinel], { qos: 1 });
      await eventually(() => member.messages.length >= 1, 'the sentinel');
      await settle(300);
      expect(member.messages.map((m) => m.topic)).toEqual([sentinel]);
    });
  });
}
