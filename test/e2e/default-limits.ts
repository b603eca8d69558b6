/**
 * The limits a broker has when nothing is configured (shared/broker/context.ts,
 * defaultBrokerConfig), seen by raw clients on one door: the broker's Receive Maximum and the
 * connection rate per client id.
 */
import type { IConnackPacket, IPublishPacket } from 'mqtt-packet';
import { describe, expect, it, type TestContext } from 'vitest';
import { eventually, type Door, type RawConnection } from '../support/clients';
import { expectClosedBy, unique } from './conformance/support';

/** The default MQTT_MAX_INFLIGHT. */
const RECEIVE_MAXIMUM = 100;
/** The default MQTT_CONNECT_RATE: 60 CONNECTs per client id in each fixed window of 60 s. */
const CONNECT_RATE = 60;

export function describeDefaultLimits(door: Door): void {
  /** A raw connection on the door, closed when the test finishes. */
  const open = async (ctx: TestContext, version: 4 | 5): Promise<RawConnection> => {
    const raw = await door.raw(version);
    ctx.onTestFinished(() => raw.close());
    return raw;
  };

  describe(`${door.name}, MQTT 5.0: the broker's default Receive Maximum`, () => {
    it(`(MQTT 5.0 3.2.2.3.3) CONNACK announces Receive Maximum ${RECEIVE_MAXIMUM}; [MQTT-3.3.4-7] the ${RECEIVE_MAXIMUM + 1}st unacknowledged QoS 2 PUBLISH gets DISCONNECT 0x93`, async (ctx) => {
      const raw = await open(ctx, 5);
      raw.send({ cmd: 'connect', clientId: unique('inflight'), protocolVersion: 5, clean: true, keepalive: 30 });
      const connack = (await raw.next('connack')) as IConnackPacket;
      expect(connack.properties?.receiveMaximum).toBe(RECEIVE_MAXIMUM);

      const topic = unique('inflight');
      const publish = (messageId: number): IPublishPacket => ({ cmd: 'publish', topic, payload: Buffer.from(String(messageId)), qos: 2, messageId, dup: false, retain: false });
      // QoS 2 PUBLISHes stay unacknowledged until their PUBREL, which this client never sends.
      for (let first = 1; first <= RECEIVE_MAXIMUM; first += 25) raw.send(...Array.from({ length: 25 }, (_, i) => publish(first + i)));
      await eventually(() => raw.packets.filter((p) => p.cmd === 'pubrec').length === RECEIVE_MAXIMUM, `${RECEIVE_MAXIMUM} PUBRECs`);
      expect(raw.closed).toBe(false);
      raw.send(publish(RECEIVE_MAXIMUM + 1));
      await expectClosedBy(raw, 5, 0x93);
    });
  });

  for (const [version, refused] of [[5, 0x9f], [4, 3]] as const) {
    describe(`${door.name}, ${version === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1'}: the default connection rate (${CONNECT_RATE} a minute per client id)`, () => {
      /** One CONNECT of `clientId`, then the socket dropped (a flapping device sends no DISCONNECT): the CONNACK's code. */
      const connectOnce = async (ctx: TestContext, clientId: string): Promise<number> => {
        const raw = await open(ctx, version);
        raw.send({ cmd: 'connect', clientId, protocolVersion: version, clean: true, keepalive: 30 });
        const connack = (await raw.next('connack')) as IConnackPacket;
        raw.close();
        return (version === 5 ? connack.reasonCode : connack.returnCode) ?? 0;
      };

      // One loop proves both: a flapping device's first CONNECT_RATE reconnections in a row are
      // never refused (a separate 30-reconnect test repeated the loop's first half), and the one
      // past the rate is.
      it(`a device reconnecting ${CONNECT_RATE} times in a row is never refused; a client id reconnecting without pause is refused once past ${CONNECT_RATE} in a window: ${version === 5 ? 'CONNACK 0x9F Connection rate exceeded' : 'CONNACK 3 Server unavailable'}`, async (ctx) => {
        const clientId = unique('reconnect-loop');
        // Fixed windows: the loop may start late in one, so at most 2 x the rate pass before a refusal.
        let accepted = 0;
        let code = 0;
        while (code === 0 && accepted <= 2 * CONNECT_RATE) {
          code = await connectOnce(ctx, clientId);
          if (code === 0) accepted++;
        }
        expect(code).toBe(refused);
        expect(accepted).toBeGreaterThanOrEqual(CONNECT_RATE);
        // Another client id is not affected.
        expect(await connectOnce(ctx, unique('other'))).toBe(0);
      });
    });
  }
}
