/**
 * A session belongs to the identity that created it: with two users and anonymous access off,
 * mallory connecting with alice's client id is refused (5.0 0x85, 3.1.1 return code 2) and
 * nothing of alice's session changes: not her connection, her will, her queue nor her
 * subscriptions; nor can mallory's attempts spend alice's connect-rate budget.
 */
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import type { IConnectPacket } from 'mqtt-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { parseAcl } from '../../shared/security/acl';
import { createJwtVerifier } from '../../shared/security/jwt';
import { hashPassword } from '../../shared/security/password';
import { collect, endAll, eventually, RawConnection, settle, type ReceivedMessage } from '../support/clients';
import { useHarness } from '../support/harness';

const jwtSecret = 'session-ownership secret, at least 32 bytes long';
const harness = useHarness({
  security: { allowAnonymous: false, jwt: createJwtVerifier({ secret: jwtSecret, audience: 'mqtt-broker' }), acl: parseAcl('readwrite devices/%u/#') },
  config: { connectRate: { count: 4, perSeconds: 60 } },
});

let counter = 0;
const id = (name: string): string => `${name}-${process.pid}-${++counter}`;

beforeAll(async () => {
  const store = harness().securityStore;
  const users = [
    { username: 'alice', password: 'alice-password' },
    { username: 'mallory', password: 'mallory-password' },
    { username: 'admin', password: 'admin-password', acl: ['readwrite #'] },
  ];
  await Promise.all(users.map(async ({ password, ...user }) => store.putUser({ ...user, passwordHash: await hashPassword(password, { logN: 12, r: 8, p: 1 }) })));
});

const open: MqttClient[] = [];
afterEach(async () => {
  await endAll(...open.splice(0));
});

/** An MQTT.js client, its CONNACK, and what it receives from the start (a resumed queue comes right after CONNACK). */
async function client(options: IClientOptions): Promise<{ client: MqttClient; connack: IConnackPacket; messages: ReceivedMessage[] }> {
  const c = mqtt.connect(harness().mqttUrl, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
  open.push(c);
  const messages = collect(c);
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  return { client: c, connack, messages };
}

const alice = (clientId: string, extra: IClientOptions = {}) =>
  client({ protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 3600 }, username: 'alice', password: 'alice-password', ...extra });

/** mallory's CONNECT with a given client id, on a raw socket; the CONNACK's code (5.0 reason code, 3.1.1 return code). */
async function malloryConnects(version: 4 | 5, clientId: string, clean: boolean): Promise<number> {
  const raw = await RawConnection.tcp(harness().mqttPort, version);
  raw.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: version,
    clean,
    keepalive: 30,
    clientId,
    username: 'mallory',
    password: Buffer.from('mallory-password'),
    ...(version === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}),
  } as IConnectPacket);
  const connack = (await raw.next('connack')) as { reasonCode?: number; returnCode?: number };
  await raw.waitClosed();
  return (version === 5 ? connack.reasonCode : connack.returnCode) ?? 0;
}

/** Rate limits count in fixed windows: start a burst well inside one, so it is not split across two. */
async function awayFromWindowEdge(perSeconds: number): Promise<void> {
  const intoWindow = Date.now() % (perSeconds * 1000);
  if (intoWindow > perSeconds * 1000 - 5000) await settle(perSeconds * 1000 - intoWindow + 100);
}

describe('a session belongs to the identity that created it', () => {
  it('[MQTT-3.2.2-8] another user with the client id is refused (Clean Start 0 and 1, 0x85 / return code 2); the session, its queue and subscriptions are untouched', async () => {
    const clientId = id('alice-sensor');
    const first = await alice(clientId);
    await first.client.subscribeAsync('devices/alice/#', { qos: 1 });
    await first.client.endAsync();

    const admin = await client({ protocolVersion: 5, username: 'admin', password: 'admin-password' });
    await admin.client.publishAsync('devices/alice/cmd', 'while-away', { qos: 1 });

    expect(await malloryConnects(5, clientId, false)).toBe(0x85);
    expect(await malloryConnects(5, clientId, true)).toBe(0x85);
    expect(await malloryConnects(4, clientId, false)).toBe(2);
    expect(await malloryConnects(4, clientId, true)).toBe(2);

    const back = await alice(clientId);
    expect(back.connack.sessionPresent).toBe(true);
    await eventually(() => back.messages.some((m) => m.payload === 'while-away'), 'the message queued while alice was away');
    await admin.client.publishAsync('devices/alice/cmd', 'after', { qos: 1 });
    await eventually(() => back.messages.some((m) => m.payload === 'after'), 'delivery on her subscription');
  });

  it('[MQTT-3.1.4-3] another user cannot take over a connected session: the owner stays connected and her will is not published', async () => {
    const clientId = id('alice-sensor');
    const watcher = await client({ protocolVersion: 5, username: 'admin', password: 'admin-password' });
    await watcher.client.subscribeAsync('devices/alice/will', { qos: 1 });
    const owner = await alice(clientId, { will: { topic: 'devices/alice/will', payload: Buffer.from('alice gone'), qos: 1, retain: false } });
    let ownerClosed = false;
    owner.client.on('close', () => (ownerClosed = true));

    expect(await malloryConnects(5, clientId, false)).toBe(0x85);
    expect(await malloryConnects(4, clientId, true)).toBe(2);

    await settle();
    expect(ownerClosed).toBe(false);
    expect(watcher.messages).toEqual([]);
    await owner.client.publishAsync('devices/alice/still-here', 'yes', { qos: 1 });
  });

  it("refused attempts by another user do not spend the owner's connect-rate budget", async () => {
    const clientId = id('alice-sensor');
    await awayFromWindowEdge(60);
    await (await alice(clientId)).client.endAsync();
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push(await malloryConnects(5, clientId, true));
    // mallory spends her own budget (4 a minute), then is refused for her rate.
    expect(codes).toEqual([0x85, 0x85, 0x85, 0x85, 0x9f, 0x9f]);
    expect((await alice(clientId)).connack.sessionPresent).toBe(true);
  });
});

describe('connect rules bind client ids to identities', () => {
  it('a user whose rules name client ids connects with those only; another is refused with 0x85', async () => {
    const passwordHash = await hashPassword('dave-password', { logN: 12, r: 8, p: 1 });
    await harness().securityStore.putUser({ username: 'dave', passwordHash, acl: ['connect %u-*'] });
    const dave = (clientId: string) => client({ protocolVersion: 5, clientId, username: 'dave', password: 'dave-password' });
    expect((await dave(id('dave'))).connack.reasonCode ?? 0).toBe(0);
    await expect(dave(id('alice-sensor'))).rejects.toMatchObject({ code: 0x85 });
  });
});

describe("a resumed session's subscriptions follow the identity's current rules", () => {
  it('a filter the user may no longer read is dropped when its session resumes; the others still deliver', async () => {
    const store = harness().securityStore;
    const passwordHash = await hashPassword('carol-password', { logN: 12, r: 8, p: 1 });
    await store.putUser({ username: 'carol', passwordHash, acl: ['read extra/#'] });
    const clientId = id('carol-sensor');
    const carol = () => client({ protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 3600 }, username: 'carol', password: 'carol-password' });
    const first = await carol();
    expect((await first.client.subscribeAsync(['extra/#', 'devices/carol/#'], { qos: 1 })).map((g) => g.qos)).toEqual([1, 1]);
    await first.client.endAsync();

    // The operator takes the extra rule away while carol is offline.
    await store.putUser({ username: 'carol', passwordHash });
    const back = await carol();
    expect(back.connack.sessionPresent).toBe(true);
    const admin = await client({ protocolVersion: 5, username: 'admin', password: 'admin-password' });
    await admin.client.publishAsync('extra/news', 'not for carol any more', { qos: 1 });
    await admin.client.publishAsync('devices/carol/cmd', 'still hers', { qos: 1 });
    await eventually(() => back.messages.some((m) => m.payload === 'still hers'), 'delivery on the filter still allowed');
    await settle();
    expect(back.messages.map((m) => m.topic)).toEqual(['devices/carol/cmd']);
  });
  it('a deny rule added while the session was away filters the deliveries of a subscription it overlaps, once the session resumes', async () => {
    const store = harness().securityStore;
    const passwordHash = await hashPassword('erin-password', { logN: 12, r: 8, p: 1 });
    await store.putUser({ username: 'erin', passwordHash, acl: ['read extra/#'] });
    const clientId = id('erin-sensor');
    const erin = () => client({ protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 3600 }, username: 'erin', password: 'erin-password' });
    const first = await erin();
    expect((await first.client.subscribeAsync('extra/#', { qos: 1 })).map((g) => g.qos)).toEqual([1]);
    await first.client.endAsync();

    // The operator denies a part of what the subscription covers while erin is offline.
    await store.putUser({ username: 'erin', passwordHash, acl: ['read extra/#', 'deny extra/secret/#'] });
    const back = await erin();
    expect(back.connack.sessionPresent).toBe(true);
    const admin = await client({ protocolVersion: 5, username: 'admin', password: 'admin-password' });
    await admin.client.publishAsync('extra/secret/plan', 'not for erin any more', { qos: 1 });
    await admin.client.publishAsync('extra/news', 'still hers', { qos: 1 });
    await eventually(() => back.messages.some((m) => m.payload === 'still hers'), 'delivery outside the denied subtree');
    await settle();
    expect(back.messages.map((m) => m.topic)).toEqual(['extra/news']);
  });
});

describe('a token lasts no longer than its expiry', () => {
  it('[MQTT-3.14.2-1] a connection whose JWT has expired is closed at its next packet: 5.0 DISCONNECT 0xA0 Maximum connect time', async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 2;
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setAudience('mqtt-broker').setExpirationTime(expiresAt).sign(new TextEncoder().encode(jwtSecret));
    const raw = await RawConnection.tcp(harness().mqttPort, 5);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: id('alice-token'), username: 'alice', password: Buffer.from(token) } as IConnectPacket);
    expect(((await raw.next('connack')) as { reasonCode?: number }).reasonCode ?? 0).toBe(0);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/alice/#', qos: 0 }] });
    await raw.next('suback');

    await eventually(() => Date.now() > expiresAt * 1000, 'the token to expire', 5000);
    raw.send({ cmd: 'publish', topic: 'devices/alice/x', payload: Buffer.from('late'), qos: 0, retain: false, dup: false });
    expect(((await raw.next('disconnect')) as { reasonCode?: number }).reasonCode).toBe(0xa0);
    await raw.waitClosed();
  });

  it('[MQTT-3.14.2-1] a connection that only pings is closed by the sweeper once its JWT has expired: DISCONNECT 0xA0', async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 2;
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setAudience('mqtt-broker').setExpirationTime(expiresAt).sign(new TextEncoder().encode(jwtSecret));
    const raw = await RawConnection.tcp(harness().mqttPort, 5);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: id('alice-idle'), username: 'alice', password: Buffer.from(token) } as IConnectPacket);
    expect(((await raw.next('connack')) as { reasonCode?: number }).reasonCode ?? 0).toBe(0);

    await eventually(() => Date.now() > expiresAt * 1000, 'the token to expire', 5000);
    raw.send({ cmd: 'pingreq' });
    await raw.next('pingresp');
    await harness().sweep();
    expect(((await raw.next('disconnect')) as { reasonCode?: number }).reasonCode).toBe(0xa0);
    await raw.waitClosed();
  });
});
