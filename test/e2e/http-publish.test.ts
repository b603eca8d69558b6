/**
 * HTTP publish end to end: the real curl binary POSTs to the harness's HTTP door, and real MQTT
 * clients (Debian's mosquitto_sub, MQTT.js) receive what it published. Authentication is the
 * CONNECT's (users, JWTs), authorization the same ACL.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAcl } from '../../shared/security/acl';
import { createJwtVerifier } from '../../shared/security/jwt';
import { hashPassword } from '../../shared/security/password';
import { collect, connectClient, endAll, eventually, settle, whenConnected } from '../support/clients';
import { curl, mosquittoSub } from '../support/command-line-clients';
import { useHarness } from '../support/harness';

const jwtSecret = 'http-publish test secret, at least 32 bytes';
const MAXIMUM_PACKET_SIZE = 16 * 1024;
const harness = useHarness({
  httpPort: 0,
  config: { maximumPacketSize: MAXIMUM_PACKET_SIZE, maxRetainedPerUser: 2 },
  security: {
    allowAnonymous: false,
    jwt: createJwtVerifier({ secret: jwtSecret, audience: 'mqtt-broker' }),
    acl: parseAcl(['readwrite demo/#', 'readwrite devices/%u/#', 'read private/#'].join('\n')),
  },
});

const token = (sub: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setAudience('mqtt-broker').setExpirationTime('5m').sign(new TextEncoder().encode(jwtSecret));

let counter = 0;
const unique = (name: string): string => `${name}/${process.pid}-${++counter}`;
const alice = ['-u', 'alice:alice-password'];
const url = (topic: string, query = ''): string => `${harness().httpUrl}/topics/${topic}${query}`;

beforeAll(async () => {
  for (const username of ['alice', 'rita']) {
    await harness().securityStore.putUser({ username, passwordHash: await hashPassword(`${username}-password`, { logN: 12, r: 8, p: 1 }) });
  }
});

const open: MqttClient[] = [];
afterEach(async () => {
  await endAll(...open.splice(0));
});
async function subscriber(filter: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const client = await connectClient(harness().mqttUrl, { protocolVersion: 5, username: 'alice', password: 'alice-password', ...options });
  open.push(client);
  await client.subscribeAsync(filter, { qos: 1, ...(options.clientId?.startsWith('http:') ? { nl: true } : {}) });
  return client;
}

describe('POST /topics/{topic}', () => {
  it('curl -X POST to /topics/demo/x?qos=1 is received by mosquitto_sub -t demo/#', async () => {
    const root = unique('demo');
    const sub = await mosquittoSub(harness().mqttPort, ['-u', 'alice', '-P', 'alice-password', '-t', `${root}/#`, '-q', '1', '-v', '-C', '1']);
    try {
      const response = await curl(['-X', 'POST', ...alice, '--data-binary', 'hello from curl', url(`${root}/x`, '?qos=1')]);
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/json');
      expect(JSON.parse(response.body.toString())).toEqual({ message: 'OK', topic: `${root}/x`, qos: 1, retain: false, matched: 1 });
      expect(await sub.exited).toBe(0);
      expect(sub.output()).toBe(`${root}/x hello from curl`);
    } finally {
      sub.stop();
    }
  });

  it('a bearer JWT authenticates as its subject: the ACL\'s %u is the token\'s user', async () => {
    const topic = `devices/carol/${unique('t')}`;
    const received = collect(await subscriber('devices/carol/#', { username: 'carol', password: await token('carol') }));
    const response = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${await token('carol')}`, '--data-binary', '21.5', url(topic)]);
    expect(response.status).toBe(200);
    await eventually(() => received.length === 1, 'the subscriber to receive the message');
    expect(received[0]).toMatchObject({ topic, payload: '21.5', qos: 0 });
  });

  it('401 with WWW-Authenticate without credentials or with a wrong password; nothing is delivered', async () => {
    const topic = unique('demo');
    const received = collect(await subscriber('demo/#'));
    for (const credentials of [[], ['-u', 'alice:wrong'], ['-H', 'Authorization: Bearer not-a-token']]) {
      const response = await curl(['-X', 'POST', ...credentials, '--data-binary', 'x', url(topic)]);
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toContain('Basic realm="mqtt"');
    }
    await settle();
    expect(received).toEqual([]);
  });

  it('403 on a topic the ACL does not let the user publish to, or a $SYS topic', async () => {
    for (const topic of [`private/${unique('x')}`, `devices/bob/${unique('x')}`, '$SYS/broker/uptime']) {
      const response = await curl(['-X', 'POST', ...alice, '--data-binary', 'x', url(encodeURIComponent(topic).replaceAll('%2F', '/'))]);
      expect(response.status, topic).toBe(403);
    }
  });

  it('400 for a topic with wildcards, no topic, or a QoS or retain flag it does not take', async () => {
    const root = unique('demo');
    for (const target of [url(`${root}/%23`), url(`${root}/+/x`), url(''), url(root, '?qos=2'), url(root, '?retain=yes')]) {
      const response = await curl(['-X', 'POST', ...alice, '--data-binary', 'x', target]);
      expect(response.status, target).toBe(400);
    }
  });

  it('413 for a message larger than the broker\'s maximum packet size', async () => {
    const response = await curl(['-X', 'POST', ...alice, '--data-binary', '@-', url(unique('demo'))], Buffer.alloc(MAXIMUM_PACKET_SIZE, 'a'));
    expect(response.status).toBe(413);
  });

  it('the topic is the path percent-decoded once: %25 is a literal %', async () => {
    const root = unique('demo');
    const received = collect(await subscriber(`${root}/#`));
    expect((await curl(['-X', 'POST', ...alice, '--data-binary', 'x', url(`${root}/100%2541`)])).status).toBe(200);
    await eventually(() => received.length === 1, 'the message');
    expect(received[0]!.topic).toBe(`${root}/100%41`);
  });

  it('a binary payload arrives byte for byte', async () => {
    const topic = unique('demo');
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const client = await subscriber(topic);
    const payloads: Buffer[] = [];
    client.on('message', (_topic, payload) => payloads.push(payload));
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'http-publish-')), 'payload.bin');
    writeFileSync(file, bytes);
    const response = await curl(['-X', 'POST', ...alice, '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, url(topic, '?qos=1')]);
    expect(response.status).toBe(200);
    await eventually(() => payloads.length === 1, 'the binary message');
    expect(payloads[0]).toEqual(bytes);
  });

  it('[MQTT-3.3.1-5] retain=true is seen by a later subscriber, with the retain flag; [MQTT-3.3.1-6] an empty retained body clears it', async () => {
    const topic = unique('demo');
    expect((await curl(['-X', 'POST', ...alice, '--data-binary', 'kept', url(topic, '?qos=1&retain=true')])).status).toBe(200);
    const sub = await mosquittoSub(harness().mqttPort, ['-u', 'alice', '-P', 'alice-password', '-t', topic, '-C', '1', '-F', '%r %t %p']);
    expect(await sub.exited).toBe(0);
    expect(sub.output()).toBe(`1 ${topic} kept`);

    expect((await curl(['-X', 'POST', ...alice, '-d', '', url(topic, '?qos=1&retain=true')])).status).toBe(200);
    const received = collect(await subscriber(topic));
    await settle();
    expect(received).toEqual([]);
  });

  it('429 for a new retained topic beyond the user\'s MQTT_MAX_RETAINED_PER_USER, at QoS 0 too: neither retained nor delivered', async () => {
    const root = unique('demo');
    const received = collect(await subscriber(`${root}/#`));
    const rita = ['-u', 'rita:rita-password'];
    for (const topic of ['a', 'b']) expect((await curl(['-X', 'POST', ...rita, '--data-binary', topic, url(`${root}/${topic}`, '?retain=true')])).status).toBe(200);
    const over = await curl(['-X', 'POST', ...rita, '--data-binary', 'c', url(`${root}/c`, '?retain=true')]);
    expect(over.status).toBe(429);
    await eventually(() => received.length === 2, 'the two retained messages within the bound');
    await settle(300);
    expect(received.map((m) => m.topic)).toEqual([`${root}/a`, `${root}/b`]);
  });

  it('QoS 1: the 200 comes once the message is queued for an offline persistent subscriber, who gets it on reconnecting', async () => {
    const topic = unique('demo');
    const clientId = `offline-${process.pid}-${counter}`;
    const options = { protocolVersion: 5 as const, clientId, clean: false, username: 'alice', password: 'alice-password', properties: { sessionExpiryInterval: 300 } };
    const first = await connectClient(harness().mqttUrl, options);
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    expect((await curl(['-X', 'POST', ...alice, '--data-binary', 'while away', url(topic, '?qos=1')])).status).toBe(200);
    // Listening before the CONNACK: the queue is sent right after it.
    const again = mqtt.connect(harness().mqttUrl, { reconnectPeriod: 0, ...options });
    open.push(again);
    const received = collect(again);
    await whenConnected(again);
    await eventually(() => received.length === 1, 'the queued message');
    expect(received[0]).toMatchObject({ topic, payload: 'while away', qos: 1 });
  });

  it('[MQTT-3.8.3-3] the publisher\'s client id is http:<user>: a No Local subscription of that id does not get its messages', async () => {
    const topic = unique('demo');
    const self = collect(await subscriber(topic, { clientId: 'http:alice' }));
    const other = collect(await subscriber(topic));
    expect((await curl(['-X', 'POST', ...alice, '--data-binary', 'x', url(topic, '?qos=1')])).status).toBe(200);
    await eventually(() => other.length === 1, 'the other subscriber to receive it');
    await settle(300);
    expect(self).toEqual([]);
  });
});
