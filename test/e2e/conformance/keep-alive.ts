/**
 * Keep-alive: the listener closes a connection silent for 1.5 times its keep-alive (5.0: after
 * DISCONNECT 0x8D), gives 5.0 clients that ask for more than the broker's maximum keep-alive (or
 * none) a Server Keep Alive, which it then enforces, and holds 3.1.1 clients, which cannot be
 * told, to that maximum.
 */
import { describe, expect, it } from 'vitest';
import { settle } from '../../support/clients';
import { clientsFor, expectClosedBy, LIMITS, unique, VERSIONS, versionName, type Doors } from './support';

export function describeKeepAlive(doors: Doors): void {
  const clients = clientsFor(doors);

  for (const version of VERSIONS) {
    describe(`${doors.main.name}, ${versionName(version)}: keep-alive`, () => {
      it(
        version === 5
          ? '[MQTT-3.1.2-22] a connection silent for 1.5 times its keep-alive is closed, after DISCONNECT 0x8D (MQTT 5.0 4.13)'
          : '[MQTT-3.1.2-24] a connection silent for 1.5 times its keep-alive is closed',
        async (ctx) => {
          const c = clients(ctx);
          const raw = await c.raw(version);
          const sentAt = Date.now();
          raw.send({ cmd: 'connect', clientId: unique('silent'), protocolVersion: version, clean: true, keepalive: 1 });
          await raw.next('connack');
          await expectClosedBy(raw, version, 0x8d, 6_000);
          // 1.5 s after the CONNECT, not at the first missed second
          expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1_450);
        },
      );
    });
  }

  describe(`${doors.limits.name}, MQTT 5.0: Server Keep Alive (MQTT_MAX_KEEPALIVE ${LIMITS.keepAlive})`, () => {
    it(`[MQTT-3.2.2-21] a keep-alive of 0 or above the broker's maximum is answered with Server Keep Alive ${LIMITS.keepAlive}; [MQTT-3.2.2-22] one within it is kept`, async (ctx) => {
      const c = clients(ctx);
      const connacks = await Promise.all(
        [0, 60, 1].map(async (keepalive) => (await c.rawConnected(5, { keepalive }, doors.limits)).connack),
      );
      expect(connacks.map((connack) => connack.properties?.serverKeepAlive)).toEqual([LIMITS.keepAlive, LIMITS.keepAlive, undefined]);
    });

    it('[MQTT-3.2.2-21] the broker enforces its Server Keep Alive: a silent client is closed with 0x8D, MQTT.js adopts it and stays connected', async (ctx) => {
      const c = clients(ctx);
      const raw = await c.raw(5, doors.limits);
      const sentAt = Date.now();
      raw.send({ cmd: 'connect', clientId: unique('no-keepalive'), protocolVersion: 5, clean: true, keepalive: 0 });
      await raw.next('connack');
      // MQTT.js asks for a minute, is told 2 s, and pings every 2 s
      const { client, connack } = await c.mqtt({ protocolVersion: 5, keepalive: 60 }, doors.limits);
      expect(connack.properties?.serverKeepAlive).toBe(LIMITS.keepAlive);

      await expectClosedBy(raw, 5, 0x8d, 8_000);
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(LIMITS.keepAlive * 1_500 - 50);
      await settle(500);
      expect(client.connected).toBe(true);
    });
  });

  describe(`${doors.limits.name}, MQTT 3.1.1: the broker's maximum keep-alive (${LIMITS.keepAlive} s)`, () => {
    it('a client asking for a longer keep-alive, or 0, is held to the maximum: closed after 1.5 times it without packets (3.1.1 has no Server Keep Alive to tell it)', async (ctx) => {
      const c = clients(ctx);
      const sentAt = Date.now();
      const silent = await Promise.all([60, 0].map(async (keepalive) => (await c.rawConnected(4, { keepalive }, doors.limits)).raw));
      for (const raw of silent) await expectClosedBy(raw, 4, 0, 8_000);
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(LIMITS.keepAlive * 1_500 - 50);
    });

    it('a client that pings within the maximum stays connected', async (ctx) => {
      const c = clients(ctx);
      const { client } = await c.mqtt({ protocolVersion: 4, keepalive: 1 }, doors.limits);
      await settle(LIMITS.keepAlive * 1_500 + 500);
      expect(client.connected).toBe(true);
    });
  });
}
