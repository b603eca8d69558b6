/**
 * 5.0 Request Problem Information, on the listener (TCP) and the API Gateway door: a refusing
 * PUBACK, PUBREC or SUBACK says why in a Reason String when the client asked for problem
 * information (1, the default), and carries no Reason String nor User Property when it asked
 * for none (0). The client's user rules are `readwrite #` and `deny secret/#`; the harness allows
 * three subscriptions per client.
 */
import type { IConnectPacket, IPubackPacket, IPubrecPacket, ISubackPacket, Packet } from 'mqtt-packet';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../shared/security/password';
import { RawConnection } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness({ config: { maxSubscriptionsPerClient: 3 } });

beforeAll(async () => {
  const passwordHash = await hashPassword('reader-password', { logN: 12, r: 8, p: 1 });
  await harness().securityStore.putUser({ username: 'reader', passwordHash, acl: ['readwrite #', 'deny secret/#'] });
});

const doors = [
  { name: 'TCP', raw: () => RawConnection.tcp(harness().mqttPort, 5) },
  { name: 'API Gateway', raw: () => RawConnection.apiGateway(harness().apigwUrl, 5) },
] as const;

let counter = 0;

/** A 5.0 connection as `reader`; `requestProblemInformation` undefined: the default (1). */
async function connect(door: (typeof doors)[number], requestProblemInformation?: boolean, maximumPacketSize?: number): Promise<RawConnection> {
  const raw = await door.raw();
  const properties = {
    ...(requestProblemInformation !== undefined ? { requestProblemInformation } : {}),
    ...(maximumPacketSize !== undefined ? { maximumPacketSize } : {}),
  };
  raw.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clean: true,
    keepalive: 30,
    clientId: `problem-${process.pid}-${++counter}`,
    username: 'reader',
    password: Buffer.from('reader-password'),
    properties,
  } as IConnectPacket);
  expect(((await raw.next('connack')) as { reasonCode?: number }).reasonCode ?? 0).toBe(0);
  return raw;
}

/** Refused: QoS 1 and QoS 2 PUBLISHes to secret/y, a topic over the level limit, and a SUBSCRIBE with a denied, an invalid and an over-quota filter. */
async function refusals(raw: RawConnection): Promise<{ puback: IPubackPacket; pubrec: IPubrecPacket; deep: IPubackPacket; suback: ISubackPacket }> {
  const publish = (messageId: number, topic: string, qos: 1 | 2): Packet => ({ cmd: 'publish', messageId, topic, payload: Buffer.from('x'), qos, retain: false, dup: false });
  raw.send(publish(1, 'secret/y', 1));
  const puback = (await raw.next('puback')) as IPubackPacket;
  raw.send(publish(2, 'secret/y', 2));
  const pubrec = (await raw.next('pubrec')) as IPubrecPacket;
  raw.send(publish(3, Array.from({ length: 40 }, () => 'l').join('/'), 1));
  const deep = (await raw.next('puback')) as IPubackPacket;
  raw.send({ cmd: 'subscribe', messageId: 4, subscriptions: ['public/#', 'secret/#', 'a/#/b', 'q/1', 'q/2', 'q/3'].map((topic) => ({ topic, qos: 1 as const })) });
  const suback = (await raw.next('suback')) as ISubackPacket;
  return { puback, pubrec, deep, suback };
}

describe('Reason Strings on refusing acknowledgements follow Request Problem Information', () => {
  for (const door of doors) {
    it(`${door.name}: (MQTT 5.0 3.4.2.2.2, 3.5.2.2.2, 3.9.2.1.2) with Request Problem Information 1, the default, a refusing PUBACK, PUBREC and SUBACK say why in a Reason String`, async () => {
      const raw = await connect(door);
      try {
        const { puback, pubrec, deep, suback } = await refusals(raw);
        expect(puback).toMatchObject({ messageId: 1, reasonCode: 0x87, properties: { reasonString: 'not authorized to publish to secret/y' } });
        expect(pubrec).toMatchObject({ messageId: 2, reasonCode: 0x87, properties: { reasonString: 'not authorized to publish to secret/y' } });
        expect(deep).toMatchObject({ messageId: 3, reasonCode: 0x90, properties: { reasonString: "topic name over the broker's limits (1024 bytes, 32 levels)" } });
        expect(suback.granted).toEqual([1, 0x87, 0x8f, 1, 1, 0x97]);
        expect(suback.properties?.reasonString).toBe('secret/#: not authorized to subscribe; a/#/b: not a valid topic filter; q/3: quota exceeded (subscriptions)');
        expect(suback.properties?.userProperties).toBeUndefined();
      } finally {
        raw.close();
      }
    });

    it(`${door.name}: [MQTT-3.1.2-29] with Request Problem Information 0, no Reason String nor User Property on PUBACK, PUBREC or SUBACK`, async () => {
      const raw = await connect(door, false);
      try {
        const { puback, pubrec, deep, suback } = await refusals(raw);
        expect([puback.reasonCode, pubrec.reasonCode, deep.reasonCode]).toEqual([0x87, 0x87, 0x90]);
        expect(suback.granted).toEqual([1, 0x87, 0x8f, 1, 1, 0x97]);
        for (const packet of [puback, pubrec, deep, suback]) {
          expect(packet.properties?.reasonString, packet.cmd).toBeUndefined();
          expect(packet.properties?.userProperties, packet.cmd).toBeUndefined();
        }
      } finally {
        raw.close();
      }
    });
  }

  it('[MQTT-3.4.2-2] [MQTT-3.9.2-1] no Reason String that would take the packet past the client\'s Maximum Packet Size', async () => {
    const raw = await connect(doors[0], undefined, 20);
    try {
      const { puback, suback } = await refusals(raw);
      expect(puback).toMatchObject({ messageId: 1, reasonCode: 0x87 });
      expect(puback.properties?.reasonString).toBeUndefined();
      expect(suback.granted).toEqual([1, 0x87, 0x8f, 1, 1, 0x97]);
      expect(suback.properties?.reasonString).toBeUndefined();
    } finally {
      raw.close();
    }
  });
});
