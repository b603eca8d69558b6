/**
 * Quotas a user cannot exceed, however many client ids it uses: sessions per user
 * (MQTT_MAX_SESSIONS_PER_USER), subscriptions per user (MQTT_MAX_SUBSCRIPTIONS_PER_USER) and
 * retained topics per user (MQTT_MAX_RETAINED_PER_USER), as
 * stock clients see them, with two users and anonymous access off.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { IConnectPacket } from 'mqtt-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../shared/security/password';
import { collect, connectClient, endAll, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness({ security: { allowAnonymous: false }, config: { maxSessionsPerUser: 2, maxRetainedPerUser: 2, maxSubscriptionsPerUser: 3 } });

let counter = 0;
const id = (name: string): string => `${name}-${process.pid}-${++counter}`;

beforeAll(async () => {
  const store = harness().securityStore;
  for (const username of ['alice', 'bob', 'carol', 'dave', 'erin']) {
    await store.putUser({ username, passwordHash: await hashPassword(`${username}-password`, { logN: 12, r: 8, p: 1 }) });
  }
});

const open: MqttClient[] = [];
afterEach(async () => {
  await endAll(...open.splice(0));
});

const as = (username: string, extra: IClientOptions = {}): IClientOptions => ({ protocolVersion: 5, username, password: `${username}-password`, ...extra });

async function client(options: IClientOptions): Promise<MqttClient> {
  const c = await connectClient(harness().mqttUrl, options);
  open.push(c);
  return c;
}

/** A CONNECT on a raw socket; the CONNACK's code (5.0 reason code, 3.1.1 return code). */
async function connackCode(version: 4 | 5, username: string, clientId: string, clean = false): Promise<number> {
  const raw = await RawConnection.tcp(harness().mqttPort, version);
  raw.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: version,
    clean,
    keepalive: 30,
    clientId,
    username,
    password: Buffer.from(`${username}-password`),
    ...(version === 5 && !clean ? { properties: { sessionExpiryInterval: 3600 } } : {}),
  } as IConnectPacket);
  const connack = (await raw.next('connack')) as { reasonCode?: number; returnCode?: number };
  if ((version === 5 ? connack.reasonCode : connack.returnCode) !== 0) await raw.waitClosed();
  else raw.close();
  return (version === 5 ? connack.reasonCode : connack.returnCode) ?? 0;
}

/** A retained QoS 1 PUBLISH's PUBACK reason code (MQTT.js rejects on a failure code, with it). */
async function pubackCode(publisher: MqttClient, topic: string, payload: string): Promise<number> {
  try {
    const ack = await publisher.publishAsync(topic, payload, { qos: 1, retain: true });
    return ack && 'reasonCode' in ack ? (ack.reasonCode ?? 0) : 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

describe('sessions per user', () => {
  it('a user with two sessions kept offline is refused a third (5.0 CONNACK 0x97, 3.1.1 return code 3) whatever the client id, not a session that ends with its connection; another user is not refused; an ended session gives its room back', async () => {
    const kept = { clean: false, properties: { sessionExpiryInterval: 3600 } };
    const first = await client(as('alice', { clientId: id('a1'), ...kept }));
    await client(as('alice', { clientId: id('a2'), ...kept }));
    // The sessions outlive their connections: still counted.
    await first.endAsync();
    expect(await connackCode(5, 'alice', id('a3'))).toBe(0x97);
    expect(await connackCode(4, 'alice', id('a4'))).toBe(3);
    // Sessions that end with their connection hold nothing offline: not counted.
    expect(await connackCode(4, 'alice', id('a-clean'), true)).toBe(0);
    expect(await connackCode(5, 'alice', id('a-clean'), true)).toBe(0);
    expect(await connackCode(5, 'bob', id('b1'))).toBe(0);

    // alice resumes her own session, and ends it (Session Expiry 0 on DISCONNECT): room for a new one.
    const back = mqtt.connect(harness().mqttUrl, { reconnectPeriod: 0, ...as('alice', { clientId: first.options.clientId!, ...kept }) });
    await new Promise((resolve, reject) => back.once('connect', resolve).once('error', reject));
    await back.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    await eventually(() => !back.connected, 'the resumed session to end');
    await settle(300);
    expect(await connackCode(5, 'alice', id('a5'))).toBe(0);
  });
});

describe('retained topics per user', () => {
  it('a user holding two retained topics is refused a third: 5.0 QoS 1 gets PUBACK 0x97 and the message goes nowhere; QoS 0 is delivered but not retained; clearing one makes room', async () => {
    const root = id('status');
    const watcher = await client(as('carol'));
    await watcher.subscribeAsync(`${root}/#`, { qos: 1 });
    const live = collect(watcher);
    const dave = await client(as('dave'));
    const codes: number[] = [];
    for (const topic of ['a', 'b', 'c']) codes.push(await pubackCode(dave, `${root}/${topic}`, topic));
    expect(codes).toEqual([0, 0, 0x97]);
    await dave.publishAsync(`${root}/d`, 'd', { qos: 0, retain: true });
    await eventually(() => live.length >= 3, `three live messages (got ${live.length})`);
    await settle(300);
    expect(live.map((m) => m.topic).sort()).toEqual([`${root}/a`, `${root}/b`, `${root}/d`]);

    const retainedNow = async (): Promise<string[]> => {
      const late = await client(as('carol'));
      const got = collect(late);
      await late.subscribeAsync(`${root}/#`, { qos: 1 });
      await settle(500);
      // Its session ends with it: carol's count has room for the next one.
      await late.endAsync();
      return got.map((m) => m.topic).sort();
    };
    expect(await retainedNow()).toEqual([`${root}/a`, `${root}/b`]);
    // Cleared by an empty retained message: room for one more.
    await dave.publishAsync(`${root}/a`, '', { qos: 1, retain: true });
    expect(await pubackCode(dave, `${root}/c`, 'c')).toBe(0);
    expect(await retainedNow()).toEqual([`${root}/b`, `${root}/c`]);
  });
});

/** A SUBSCRIBE's SUBACK codes (MQTT.js rejects when one is a failure, with the SUBACK). */
async function subackCodes(subscriber: MqttClient, filters: string | string[], qos: 0 | 1 = 1): Promise<number[]> {
  try {
    return (await subscriber.subscribeAsync(filters, { qos })).map((g) => g.qos);
  } catch (error) {
    return (error as { packet?: { granted?: number[] } }).packet?.granted ?? [];
  }
}

describe('subscriptions per user', () => {
  it('a user\'s subscriptions kept offline are counted across its client ids: past three, SUBACK 0x97 (3.1.1: 0x80) for the new filters; unsubscribing makes room', async () => {
    const root = id('subs');
    const first = await client(as('erin', { clean: false, clientId: id('erin-5'), properties: { sessionExpiryInterval: 600 } }));
    expect(await subackCodes(first, [`${root}/1`, `${root}/2`])).toEqual([1, 1]);
    const second = await client(as('erin', { protocolVersion: 4, clean: false, clientId: id('erin-311') }));
    expect(await subackCodes(second, [`${root}/3`, `${root}/4`])).toEqual([1, 0x80]);
    // Subscribing again to a filter it has costs nothing.
    expect(await subackCodes(first, `${root}/1`, 0)).toEqual([0]);
    expect(await subackCodes(first, `${root}/5`)).toEqual([0x97]);
    // A session that ends with its connection holds nothing offline: its filters are not counted.
    const passing = await client(as('erin'));
    expect(await subackCodes(passing, [`${root}/6`, `${root}/7`])).toEqual([1, 1]);
    await first.unsubscribeAsync(`${root}/2`);
    expect(await subackCodes(second, `${root}/4`)).toEqual([1]);
  });
});
