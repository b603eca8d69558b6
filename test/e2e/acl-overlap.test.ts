/**
 * A subscription that overlaps a deny rule is granted and filtered per delivery, as mosquitto
 * does: the reader's rules are `readwrite #` and `deny secret/#`, so `#` is granted and brings
 * public/x but never secret/y, live or retained. The publisher has no rules (no ACL configured),
 * so secret/y is really published and routed. Over the listener (Debian's mosquitto_sub) and the
 * API Gateway door (MQTT.js with the browser adapter).
 */
import { spawn } from 'node:child_process';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../shared/security/password';
import { collect, connectClient, connectThroughApiGateway, endAll, eventually, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness();

beforeAll(async () => {
  const passwordHash = await hashPassword('reader-password', { logN: 12, r: 8, p: 1 });
  await harness().securityStore.putUser({ username: 'reader', passwordHash, acl: ['readwrite #', 'deny secret/#'] });
});

const open: MqttClient[] = [];
afterEach(async () => {
  await endAll(...open.splice(0));
});

async function publisher(): Promise<MqttClient> {
  const client = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
  open.push(client);
  return client;
}

/** Retained messages on both sides of the deny rule, for the replay; cleared by the returned function. */
async function retainBoth(root: string): Promise<() => Promise<void>> {
  const pub = await publisher();
  await pub.publishAsync(`public/${root}/r`, 'kept public', { qos: 1, retain: true });
  await pub.publishAsync(`secret/${root}/r`, 'kept secret', { qos: 1, retain: true });
  return async () => {
    await pub.publishAsync(`public/${root}/r`, '', { qos: 1, retain: true });
    await pub.publishAsync(`secret/${root}/r`, '', { qos: 1, retain: true });
  };
}

/** public/x, secret/y, then public/z, which marks the end: what arrives before it is all that will. */
async function publishThree(root: string): Promise<void> {
  const pub = await publisher();
  for (const topic of [`public/${root}/x`, `secret/${root}/y`, `public/${root}/z`]) await pub.publishAsync(topic, topic, { qos: 1 });
}

describe('a subscription overlapping a deny rule is granted, each delivery filtered (mosquitto_sub over the listener)', () => {
  for (const version of ['mqttv311', 'mqttv5'] as const) {
    it(`${version}: [MQTT-3.9.3-1] mosquitto_sub -t '#' is granted QoS 1; it gets public/x and the public retained message, not secret/y nor the secret one`, async () => {
      const root = `${version}-${Date.now()}`;
      const clear = await retainBoth(root);
      const args = ['-h', '127.0.0.1', '-p', String(harness().mqttPort), '-V', version, '-u', 'reader', '-P', 'reader-password', '-t', '#', '-q', '1', '-v', '-d', '-C', '3', '-W', '20'];
      // stdbuf: mosquitto_sub block-buffers stdout into a pipe
      const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...args]);
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        await eventually(() => /Subscribed \(mid: \d+\): \d+/.test(out), 'the SUBACK');
        // The granted QoS (0x80 / 0x87 if refused)
        expect(out).toMatch(/Subscribed \(mid: \d+\): 1\b/);
        await publishThree(root);
        expect(await exited).toBe(0);
        const messages = out.split('\n').filter((line) => line !== '' && !/^Client .* (sending|received) /.test(line) && !line.startsWith('Subscribed'));
        expect(messages).toEqual([`public/${root}/r kept public`, `public/${root}/x public/${root}/x`, `public/${root}/z public/${root}/z`]);
      } finally {
        child.kill();
        await clear();
      }
    });
  }
});

describe('a subscription overlapping a deny rule is granted, each delivery filtered (MQTT.js over the API Gateway door)', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`${protocolVersion === 5 ? '5.0' : '3.1.1'}: [MQTT-3.9.3-1] '#' is granted; public/x and the public retained message arrive, secret/y and the secret one do not`, async () => {
      const root = `apigw-${protocolVersion}-${Date.now()}`;
      const clear = await retainBoth(root);
      const reader = await connectThroughApiGateway(harness().apigwUrl, { protocolVersion, username: 'reader', password: 'reader-password' });
      open.push(reader);
      try {
        const got = collect(reader);
        const granted = await reader.subscribeAsync('#', { qos: 1 });
        expect(granted.map((g) => g.qos)).toEqual([1]);
        await eventually(() => got.length === 1, 'the public retained message');
        await publishThree(root);
        await eventually(() => got.some((m) => m.topic === `public/${root}/z`), 'public/z');
        await settle(300);
        expect(got.map((m) => m.topic)).toEqual([`public/${root}/r`, `public/${root}/x`, `public/${root}/z`]);
        // A filter the deny rule covers entirely is refused
        await expect(reader.subscribeAsync('secret/#', { qos: 1 })).rejects.toThrow(/Not authorized|Unspecified error|128/);
      } finally {
        await clear();
      }
    });
  }
});
