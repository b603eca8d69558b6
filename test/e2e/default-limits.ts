/**
 * The limits a broker has when nothing is configured (shared/broker/context.ts,
 * defaultBrokerConfig), seen by raw clients on one door: the broker's Receive Maximum.
 */
import type { IConnackPacket, IPublishPacket } from 'mqtt-packet';
import { describe, expect, it, type TestContext } from 'vitest';
import { eventually, type Door, type RawConnection } from '../support/clients';
import { expectClosedBy, unique } from './conformance/support';

/** The default MQTT_MAX_INFLIGHT. */
const RECEIVE_MAXIMUM = 100;

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
}
