/**
 * mqtts:// in the local harness, as the NLB serves it in the cloud: a self-signed certificate
 * made at start, trusted by pinning it (MQTT.js `ca`, mosquitto's --cafile); and wss:// (MQTT
 * over secure WebSocket) with the same certificate.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness({ tls: { port: 0, wssPort: 0 } });

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output })));
}

describe('MQTT over TLS (local harness)', () => {
  it('MQTT.js over wss:// with the certificate pinned subscribes, and gets what an mqtts:// client publishes', async () => {
    const url = harness().wssUrl!;
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const ca = harness().tlsCertificate!;
    const sub = await connectClient(url, { protocolVersion: 5, ca, rejectUnauthorized: true });
    const pub = await connectClient(harness().mqttsUrl!, { protocolVersion: 5, ca, rejectUnauthorized: true });
    const got = collect(sub);
    await sub.subscribeAsync('wss/#', { qos: 1 });
    await pub.publishAsync('wss/hello', 'over tls', { qos: 1 });
    await eventually(() => got.length === 1, 'the message over secure WebSocket');
    expect(got[0]).toMatchObject({ topic: 'wss/hello', payload: 'over tls' });
    await endAll(sub, pub);
  });

  it('a wss:// client that does not trust the certificate is not connected', async () => {
    const client = mqtt.connect(harness().wssUrl!, { reconnectPeriod: 0, connectTimeout: 5_000, rejectUnauthorized: true });
    const error = await new Promise<Error>((resolve) => client.once('error', resolve));
    expect(error.message).toMatch(/self.signed|certificate/i);
    client.end(true);
  });

  it('MQTT.js with the certificate pinned as its CA publishes and receives over mqtts://', async () => {
    const url = harness().mqttsUrl!;
    expect(url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const ca = harness().tlsCertificate!;
    const sub = await connectClient(url, { protocolVersion: 5, ca, rejectUnauthorized: true });
    const pub = await connectClient(url, { protocolVersion: 4, ca, rejectUnauthorized: true });
    const got = collect(sub);
    await sub.subscribeAsync('tls/#', { qos: 1 });
    await pub.publishAsync('tls/hello', 'secret', { qos: 1 });
    await eventually(() => got.length === 1, 'the message over TLS');
    expect(got[0]).toMatchObject({ topic: 'tls/hello', payload: 'secret' });
    await endAll(sub, pub);
  });

  it('a client that does not trust the certificate is not connected', async () => {
    const client = mqtt.connect(harness().mqttsUrl!, { reconnectPeriod: 0, connectTimeout: 5_000, rejectUnauthorized: true });
    const error = await new Promise<Error>((resolve) => client.once('error', resolve));
    expect(error.message).toMatch(/self[- ]signed|certificate/i);
    client.end(true);
  });

  it('mosquitto_sub and mosquitto_pub with --cafile', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mqtt-ca-'));
    const caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, harness().tlsCertificate!);
    const common = ['-h', 'localhost', '-p', String(harness().mqttsPort), '--cafile', caFile];
    const subscriber = run('mosquitto_sub', [...common, '-t', 'tls/mosquitto', '-C', '1', '-W', '20', '-V', 'mqttv5']);
    // mosquitto_sub has no "subscribed" signal without -d; publish until it has received one.
    let received: { code: number | null; output: string } | undefined;
    void subscriber.then((result) => (received = result));
    while (!received) {
      const published = await run('mosquitto_pub', [...common, '-t', 'tls/mosquitto', '-m', 'over tls', '-q', '1']);
      expect(published.code).toBe(0);
      await eventually(() => received !== undefined, 'mosquitto_sub', 300).catch(() => undefined);
    }
    expect(received).toEqual({ code: 0, output: 'over tls\n' });
  });
});
