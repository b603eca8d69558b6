/**
 * Authentication and authorization end to end: users in the Security table (scrypt hashes), JWTs
 * as the password or as API Gateway's `?token=`, and an ACL with %u/%c patterns, observed by
 * real clients (MQTT.js, raw sockets, the API Gateway door's text frames).
 */
import { SignJWT } from 'jose';
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseAcl } from '../../shared/security/acl';
import { createJwtVerifier } from '../../shared/security/jwt';
import { hashPassword } from '../../shared/security/password';
import { collect, connectClient, endAll, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const jwtSecret = 'auth-test secret, at least 32 bytes long';
const harness = useHarness({
  security: {
    allowAnonymous: false,
    jwt: createJwtVerifier({ secret: jwtSecret, audience: 'mqtt-broker' }),
    acl: parseAcl(['readwrite devices/%u/#', 'read public/#', 'write public/%u/#', 'readwrite clients/%c/#'].join('\n')),
  },
});

const token = (sub: string, options: { expiresIn?: string | number; acl?: string[] } = {}): Promise<string> =>
  new SignJWT(options.acl ? { acl: options.acl } : {})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setAudience('mqtt-broker')
    .setExpirationTime(options.expiresIn ?? '5m')
    .sign(new TextEncoder().encode(jwtSecret));

let counter = 0;
const id = (name: string): string => `${name}-${process.pid}-${++counter}`;

beforeAll(async () => {
  const store = harness().securityStore;
  const users = [
    { username: 'alice', password: 'alice-password' },
    { username: 'admin', password: 'admin-password', acl: ['readwrite #'] },
    { username: 'eve', password: 'eve-password', acl: ['read sensors/#', 'deny sensors/secret/#'] },
  ];
  await Promise.all(
    // A cheaper scrypt cost than the CLI's (the hash records its own): the suite connects often.
    users.map(async ({ password, ...user }) => store.putUser({ ...user, passwordHash: await hashPassword(password, { logN: 12, r: 8, p: 1 }) })),
  );
});

const open: MqttClient[] = [];
afterEach(async () => {
  await endAll(...open.splice(0));
});
async function client(options: Parameters<typeof connectClient>[1]): Promise<MqttClient> {
  const c = await connectClient(harness().mqttUrl, options);
  open.push(c);
  return c;
}
const admin = (protocolVersion: 4 | 5 = 5) => client({ protocolVersion, username: 'admin', password: 'admin-password' });

/** CONNECT on a raw socket; resolves with the CONNACK's code (5.0 reason code, 3.1.1 return code). */
async function rawConnect(version: 4 | 5, fields: Partial<IConnectPacket>): Promise<{ raw: RawConnection; code: number }> {
  const raw = await RawConnection.tcp(harness().mqttPort, version);
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 30, clientId: id('raw'), ...fields } as IConnectPacket);
  const connack = (await raw.next('connack')) as { reasonCode?: number; returnCode?: number };
  return { raw, code: (version === 5 ? connack.reasonCode : connack.returnCode) ?? 0 };
}

describe('authentication', () => {
  it('[MQTT-3.1.4-2] [MQTT-3.2.2-7] 5.0: an anonymous client is refused with CONNACK 0x87 Not authorized, then closed', async () => {
    const { raw, code } = await rawConnect(5, {});
    expect(code).toBe(0x87);
    await raw.waitClosed();
  });

  it('[MQTT-3.2.2-5] 3.1.1: an anonymous client is refused with CONNACK 5 Not authorized, then closed', async () => {
    const { raw, code } = await rawConnect(4, {});
    expect(code).toBe(5);
    await raw.waitClosed();
  });

  for (const [version, bad] of [[5, 0x86], [4, 4]] as const) {
    it(`${version === 5 ? '5.0: 0x86' : '3.1.1: 4'} Bad user name or password for a wrong password, an unknown user, a user name alone`, async () => {
      for (const fields of [
        { username: 'alice', password: Buffer.from('wrong') },
        { username: 'mallory', password: Buffer.from('alice-password') },
        { username: 'alice' },
      ]) {
        const { raw, code } = await rawConnect(version, fields);
        expect(code).toBe(bad);
        await raw.waitClosed();
      }
    });
  }

  it('accepts the right password in both versions', async () => {
    for (const protocolVersion of [4, 5] as const) {
      const c = await client({ protocolVersion, username: 'alice', password: 'alice-password' });
      expect(c.connected).toBe(true);
    }
  });

  it('accepts a JWT as the password in both versions; the identity is the token\'s, whatever the user name', async () => {
    for (const protocolVersion of [4, 5] as const) {
      const c = await client({ protocolVersion, username: 'alice', password: await token('bob') });
      expect(c.connected).toBe(true);
    }
    const c = await client({ protocolVersion: 5, username: 'alice', password: await token('bob') });
    await expect(c.publishAsync('devices/bob/x', 'as bob', { qos: 1 })).resolves.toBeDefined();
    await expect(c.publishAsync('devices/alice/x', 'not as alice', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
  });

  it('refuses a JWT that expired, was signed with another key, or was made for another audience (0x86)', async () => {
    const elsewhere = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('bob').setAudience('another-service').setExpirationTime('5m').sign(new TextEncoder().encode(jwtSecret));
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('bob').setAudience('mqtt-broker').setExpirationTime('5m').sign(new TextEncoder().encode('not the secret, but long enough too'));
    for (const fields of [
      { username: 'jwt', password: Buffer.from(await token('bob', { expiresIn: Math.floor(Date.now() / 1000) - 10 })) },
      { username: 'jwt', password: Buffer.from(forged) },
      { username: 'jwt', password: Buffer.from(elsewhere) },
    ]) {
      const { raw, code } = await rawConnect(5, fields);
      expect(code).toBe(0x86);
      await raw.waitClosed();
    }
  });

  it('[MQTT-4.12.0-1] 5.0: an authentication method the server does not offer gets 0x8C Bad authentication method', async () => {
    const { raw, code } = await rawConnect(5, { properties: { authenticationMethod: 'SCRAM-SHA-1' } });
    expect(code).toBe(0x8c);
    await raw.waitClosed();
  });
});

describe('authorization (ACL: readwrite devices/%u/#, read public/#, write public/%u/#, readwrite clients/%c/#)', () => {
  it('[MQTT-3.3.5-2] 5.0: an unauthorized QoS 1 / QoS 2 PUBLISH gets PUBACK / PUBREC 0x87 and reaches nobody; the connection stays', async () => {
    const watcher = await admin();
    const seen = collect(watcher);
    await watcher.subscribeAsync(['devices/#', 'public/#'], { qos: 1 });
    const { raw, code } = await rawConnect(5, { username: 'alice', password: Buffer.from('alice-password') });
    expect(code).toBe(0);
    raw.send(
      { cmd: 'publish', topic: 'devices/bob/cmd', payload: Buffer.from('x'), qos: 1, dup: false, retain: false, messageId: 1 },
      { cmd: 'publish', topic: 'public/news', payload: Buffer.from('x'), qos: 2, dup: false, retain: false, messageId: 2 },
      { cmd: 'publish', topic: 'devices/alice/temp', payload: Buffer.from('ok'), qos: 1, dup: false, retain: false, messageId: 3 },
    );
    expect(await raw.next('puback')).toMatchObject({ messageId: 1, reasonCode: 0x87 });
    expect(await raw.next('pubrec')).toMatchObject({ messageId: 2, reasonCode: 0x87 });
    expect(await raw.next('puback')).toMatchObject({ messageId: 3, reasonCode: 0 });
    await eventually(() => seen.length === 1, 'the authorized message');
    await settle(300);
    expect(seen.map((m) => m.topic)).toEqual(['devices/alice/temp']);
    expect(raw.closed).toBe(false);
    raw.close();
  });

  it('[MQTT-3.3.5-2] 3.1.1: an unauthorized PUBLISH is acknowledged as usual but reaches nobody; the connection stays', async () => {
    const watcher = await admin(4);
    const seen = collect(watcher);
    await watcher.subscribeAsync('devices/#', { qos: 1 });
    const alice = await client({ protocolVersion: 4, username: 'alice', password: 'alice-password' });
    await alice.publishAsync('devices/bob/cmd', 'forbidden', { qos: 1 });
    await alice.publishAsync('devices/alice/temp', 'allowed', { qos: 1 });
    await eventually(() => seen.length === 1, 'the authorized message');
    await settle(300);
    expect(seen.map((m) => m.payload)).toEqual(['allowed']);
    expect(alice.connected).toBe(true);
  });

  it('[MQTT-3.9.3-1] SUBACK refuses each unauthorized filter on its own: 0x87 in 5.0, 0x80 in 3.1.1', async () => {
    for (const [version, refused] of [[5, 0x87], [4, 0x80]] as const) {
      const { raw, code } = await rawConnect(version, { username: 'alice', password: Buffer.from('alice-password') });
      expect(code).toBe(0);
      raw.send({
        cmd: 'subscribe',
        messageId: 7,
        subscriptions: [
          { topic: 'devices/alice/#', qos: 1 },
          { topic: 'devices/+/temp', qos: 1 }, // would read other users' devices
          { topic: 'public/#', qos: 0 },
          { topic: '#', qos: 0 },
        ],
      } as Packet);
      expect(await raw.next('suback')).toMatchObject({ messageId: 7, granted: [1, refused, 0, refused] });
      raw.close();
    }
  });

  it('a subscription that was refused delivers nothing; a granted one delivers', async () => {
    const alice = await client({ protocolVersion: 5, username: 'alice', password: 'alice-password' });
    const got = collect(alice);
    await expect(alice.subscribeAsync('devices/+/temp', { qos: 0 })).rejects.toThrow(/Not authorized/);
    await alice.subscribeAsync('public/#', { qos: 0 });
    const pub = await admin();
    await pub.publishAsync('devices/bob/temp', 'bob', { qos: 1 });
    await pub.publishAsync('public/news', 'news', { qos: 1 });
    await eventually(() => got.length === 1, 'the public message');
    await settle(300);
    expect(got.map((m) => m.topic)).toEqual(['public/news']);
  });

  it('[MQTT-3.1.4-2] a will topic the user may not publish to refuses the CONNECT: 5.0 0x87, 3.1.1 5', async () => {
    for (const [version, refused] of [[5, 0x87], [4, 5]] as const) {
      const { raw, code } = await rawConnect(version, {
        username: 'alice',
        password: Buffer.from('alice-password'),
        will: { topic: 'devices/bob/status', payload: Buffer.from('gone'), qos: 0, retain: false },
      });
      expect(code).toBe(refused);
      await raw.waitClosed();
    }
    const { raw, code } = await rawConnect(5, {
      username: 'alice',
      password: Buffer.from('alice-password'),
      will: { topic: 'devices/alice/status', payload: Buffer.from('gone'), qos: 0, retain: false },
    });
    expect(code).toBe(0);
    raw.close();
  });

  it('%c stands for the client id: a client may use clients/<its id>/#, not another id', async () => {
    const clientId = id('dev');
    const c = await client({ protocolVersion: 5, clientId, username: 'jwt', password: await token('dave') });
    await expect(c.publishAsync(`clients/${clientId}/x`, 'mine', { qos: 1 })).resolves.toBeDefined();
    await expect(c.publishAsync(`clients/${clientId}-other/x`, 'theirs', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
  });

  it("a user's own rules (user record, token claim) add to the patterns, and deny wins", async () => {
    const eve = await client({ protocolVersion: 5, username: 'eve', password: 'eve-password' });
    await eve.subscribeAsync(['sensors/kitchen/#', 'devices/eve/#'], { qos: 0 });
    // Both overlap the denied sensors/secret/# (sensors/secret/temp matches each): granted, filtered per delivery
    await expect(eve.subscribeAsync('sensors/#', { qos: 0 })).resolves.toBeDefined();
    await expect(eve.subscribeAsync('sensors/+/temp', { qos: 0 })).resolves.toBeDefined();
    // The deny rule covers every topic of this one
    await expect(eve.subscribeAsync('sensors/secret/+', { qos: 0 })).rejects.toThrow(/Not authorized/);
    const frank = await client({ protocolVersion: 5, username: 'jwt', password: await token('frank', { acl: ['write telemetry/#'] }) });
    await expect(frank.publishAsync('telemetry/1', 'x', { qos: 1 })).resolves.toBeDefined();
    await expect(frank.publishAsync('sensors/1', 'x', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
  });
});

/** The API Gateway door, speaking MQTT 5.0 in base64 text frames. */
async function textDoor(query = ''): Promise<{ ws: WebSocket; packets: Packet[]; send(packet: Packet): void } | { status: number }> {
  const ws = new WebSocket(harness().apigwUrl + query, 'mqtt');
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  parser.on('packet', (packet: Packet) => packets.push(packet));
  ws.on('message', (data) => parser.parse(Buffer.from(data.toString(), 'base64')));
  const status = await new Promise<number>((resolve, reject) => {
    ws.once('open', () => resolve(101));
    ws.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    ws.once('error', reject);
  });
  if (status !== 101) {
    ws.terminate();
    return { status };
  }
  return { ws, packets, send: (packet) => ws.send(mqttPacket.generate(packet, { protocolVersion: 5 }).toString('base64')) };
}

describe('API Gateway door: a browser passes its JWT as ?token= (or as the MQTT password)', () => {
  const connect = (fields: Partial<IConnectPacket> = {}): Packet =>
    ({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: id('browser'), ...fields }) as Packet;

  it('$connect refuses an invalid token with HTTP 401, before any MQTT', async () => {
    expect(await textDoor(`/?token=${await token('bob', { expiresIn: Math.floor(Date.now() / 1000) - 10 })}`)).toEqual({ status: 401 });
    expect(await textDoor('/?token=not-a-jwt')).toEqual({ status: 401 });
  });

  it("a valid ?token= makes a CONNECT without credentials that token's user, ACL included", async () => {
    const door = await textDoor(`/?token=${await token('gina')}`);
    if (!('ws' in door)) throw new Error(`handshake refused: ${door.status}`);
    door.send(connect());
    await eventually(() => door.packets.some((p) => p.cmd === 'connack'), 'CONNACK');
    expect(door.packets[0]).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    door.send({ cmd: 'publish', topic: 'devices/gina/x', payload: Buffer.from('1'), qos: 1, dup: false, retain: false, messageId: 1 });
    door.send({ cmd: 'publish', topic: 'devices/bob/x', payload: Buffer.from('2'), qos: 1, dup: false, retain: false, messageId: 2 });
    await eventually(() => door.packets.filter((p) => p.cmd === 'puback').length === 2, 'two PUBACKs');
    const acks = door.packets.filter((p) => p.cmd === 'puback') as Array<{ messageId: number; reasonCode: number }>;
    expect(acks.sort((a, b) => a.messageId - b.messageId).map((a) => a.reasonCode)).toEqual([0x10, 0x87]);
    door.ws.close();
  });

  it("[MQTT-3.14.2-1] the ?token= identity lasts no longer than the token: once it expires, the next packet gets DISCONNECT 0xA0 Maximum connect time", async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 2;
    const door = await textDoor(`/?token=${await token('gina', { expiresIn: expiresAt })}`);
    if (!('ws' in door)) throw new Error(`handshake refused: ${door.status}`);
    door.send(connect());
    await eventually(() => door.packets.some((p) => p.cmd === 'connack'), 'CONNACK');
    expect(door.packets[0]).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    await eventually(() => Date.now() > expiresAt * 1000, 'the token to expire', 5000);
    door.send({ cmd: 'publish', topic: 'devices/gina/x', payload: Buffer.from('late'), qos: 1, dup: false, retain: false, messageId: 1 });
    await eventually(() => door.packets.some((p) => p.cmd === 'disconnect'), 'DISCONNECT');
    expect(door.packets.find((p) => p.cmd === 'disconnect')).toMatchObject({ reasonCode: 0xa0 });
    expect(door.packets.some((p) => p.cmd === 'puback')).toBe(false);
  });

  it('without a token or credentials, the CONNECT is refused with 0x87; the token as the password works', async () => {
    const anonymous = await textDoor();
    if (!('ws' in anonymous)) throw new Error('handshake refused');
    anonymous.send(connect());
    await eventually(() => anonymous.packets.length > 0, 'CONNACK');
    expect(anonymous.packets[0]).toMatchObject({ cmd: 'connack', reasonCode: 0x87 });
    const withPassword = await textDoor();
    if (!('ws' in withPassword)) throw new Error('handshake refused');
    withPassword.send(connect({ username: 'jwt', password: Buffer.from(await token('gina')) }));
    await eventually(() => withPassword.packets.length > 0, 'CONNACK');
    expect(withPassword.packets[0]).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    withPassword.ws.close();
  });
});
