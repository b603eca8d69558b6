/**
 * Security as a user meets it through `npm start` and `npm run users` (each in its own process):
 * the startup lines say whether anonymous clients are allowed; --tls serves mqtts with a
 * certificate file to pin, and with MQTT_TLS_CLIENT_CA asks devices for certificates; users added with the CLI connect and removed ones no longer do;
 * misconfiguration stops with one line saying what to set.
 */
import { describe, expect, inject, it } from 'vitest';
import { connectClient, eventually } from '../support/clients';
import { freePort } from '../../local/free-port';
import { createCertificateAuthority, issueDeviceCertificate, writePemFiles } from '../support/device-certificates';
import { runTs } from '../support/run-ts';

async function ports(): Promise<NodeJS.ProcessEnv> {
  const [mqtt, ws, apigw, http] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  return { MQTT_PORT: String(mqtt), MQTT_WS_PORT: String(ws), APIGW_WS_PORT: String(apigw), HTTP_PORT: String(http), DYNAMODB_ENDPOINT: inject('dynamoDbEndpoint') };
}

const errorLines = (output: string): string[] => output.split('\n').filter((line) => line.startsWith('error:'));

describe('npm start: security', () => {
  it('says that anonymous clients are allowed by default', async () => {
    const started = runTs('local/main.ts', [], { ...(await ports()), TABLE_PREFIX: `anon-${process.pid}` });
    try {
      await eventually(() => started.output().includes('Ctrl-C stops everything'), 'the startup lines', 30_000);
      expect(started.output()).toMatch(/security +authentication: user name and password; anonymous clients ALLOWED \(set MQTT_ALLOW_ANONYMOUS=false or --no-anonymous/);
      started.child.kill('SIGINT');
      expect(await started.exited).toBe(0);
    } finally {
      started.child.kill('SIGKILL');
    }
  }, 60_000);

  it('--tls --no-anonymous: mqtts with a CA file to pin; a user added with npm run users connects, and no longer once removed', async () => {
    const env = { ...(await ports()), TABLE_PREFIX: `tls-${process.pid}` };
    const [tlsPort, wssPort] = [await freePort(), await freePort()];
    const started = runTs('local/main.ts', ['--tls', '--tls-port', String(tlsPort), '--wss-port', String(wssPort), '--no-anonymous'], env);
    try {
      await eventually(() => started.output().includes('Ctrl-C stops everything'), 'the startup lines', 30_000);
      expect(started.output()).toContain('anonymous clients refused');
      const caFile = /trust it with --cafile (\S+)\)/.exec(started.output())?.[1];
      expect(caFile).toBeDefined();
      expect(started.output()).toContain(`mqtts://127.0.0.1:${tlsPort}`);
      expect(started.output()).toContain(`wss://127.0.0.1:${wssPort}/mqtt`);

      const users = (args: string[]) => runTs('local/users.ts', args, env);
      const added = users(['add', 'carol', '--password', 'carol-secret', '--acl', 'readwrite carol/#']);
      expect(await added.exited).toBe(0);
      expect(added.output()).toContain(`user carol saved in tls-${process.pid}-Security`);
      const listed = users(['list']);
      expect(await listed.exited).toBe(0);
      expect(listed.output()).toContain('carol\treadwrite carol/#');

      const { readFileSync } = await import('node:fs');
      const ca = readFileSync(caFile!, 'utf8');
      const url = `mqtts://localhost:${tlsPort}`;
      const carol = await connectClient(url, { protocolVersion: 5, ca, username: 'carol', password: 'carol-secret' });
      await carol.endAsync();
      const overWss = await connectClient(`wss://localhost:${wssPort}/mqtt`, { protocolVersion: 5, ca, username: 'carol', password: 'carol-secret' });
      await overWss.endAsync();
      await expect(connectClient(url, { protocolVersion: 5, ca })).rejects.toMatchObject({ code: 0x87 });

      expect(await users(['remove', 'carol']).exited).toBe(0);
      await expect(connectClient(url, { protocolVersion: 5, ca, username: 'carol', password: 'carol-secret' })).rejects.toMatchObject({ code: 0x86 });
      const again = users(['remove', 'carol']);
      expect(await again.exited).toBe(1);
      expect(errorLines(again.output())).toEqual([`error: no user carol in tls-${process.pid}-Security at ${inject('dynamoDbEndpoint')}`]);

      started.child.kill('SIGINT');
      expect(await started.exited).toBe(0);
    } finally {
      started.child.kill('SIGKILL');
    }
  }, 90_000);

  it('MQTT_TLS_CLIENT_CA with --tls: devices present a certificate from that CA and are known by its CN; without one they are refused', async () => {
    const ca = await createCertificateAuthority('device CA');
    const device = await issueDeviceCertificate(ca, 'sensor-1');
    const files = writePemFiles({ ca: ca.certificate });
    const env = { ...(await ports()), TABLE_PREFIX: `mtls-${process.pid}`, MQTT_TLS_CLIENT_CA: files.ca!, MQTT_ACL: 'readwrite devices/%u/#' };
    const tlsPort = await freePort();
    const started = runTs('local/main.ts', ['--tls', '--tls-port', String(tlsPort), '--wss-port', String(await freePort()), '--no-anonymous'], env);
    try {
      await eventually(() => started.output().includes('Ctrl-C stops everything'), 'the startup lines', 30_000);
      expect(started.output()).toContain('devices present a certificate from MQTT_TLS_CLIENT_CA; its cn is the user name');
      const { readFileSync } = await import('node:fs');
      const serverCa = readFileSync(/trust it with --cafile (\S+)\)/.exec(started.output())![1]!, 'utf8');
      const url = `mqtts://localhost:${tlsPort}`;
      const sensor = await connectClient(url, { protocolVersion: 5, ca: serverCa, cert: device.cert, key: device.key });
      await sensor.publishAsync('devices/sensor-1/temp', '21', { qos: 1 });
      await expect(sensor.publishAsync('devices/sensor-2/temp', '21', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
      await sensor.endAsync();
      await expect(connectClient(url, { protocolVersion: 5, ca: serverCa })).rejects.toThrow();
      started.child.kill('SIGINT');
      expect(await started.exited).toBe(0);
    } finally {
      started.child.kill('SIGKILL');
    }
  }, 90_000);

  it('stops with one line saying what to set for a bad limit, ACL, JWT key or device CA', async () => {
    const cases: Array<[NodeJS.ProcessEnv, string]> = [
      [{ MQTT_PUBLISH_RATE: 'fast' }, 'error: MQTT_PUBLISH_RATE must look like 100/1s (count per seconds) or be "off", got "fast"'],
      [{ MQTT_ACL: 'readwrite a/#/b' }, 'error: MQTT_ACL: ACL rule "readwrite a/#/b": \'#\' must be the whole last level'],
      [{ MQTT_JWT_PUBLIC_KEY: 'not a key', MQTT_JWT_AUDIENCE: 'mqtt' }, 'error: MQTT_JWT_*: the JWT public key is not a PEM public key'],
      [{ MQTT_JWT_SECRET: 'a secret long enough for HS256 tokens' }, 'error: MQTT_JWT_AUDIENCE must be set when JWT authentication is on'],
      [{ MQTT_JWT_JWKS_URL: 'http://id.example/jwks.json', MQTT_JWT_AUDIENCE: 'mqtt', MQTT_JWT_ISSUER: 'https://id.example' }, 'error: MQTT_JWT_JWKS_URL must be an https:// URL'],
      [{ MQTT_ALLOW_ANONYMOUS: 'maybe' }, 'error: MQTT_ALLOW_ANONYMOUS must be true or false, got "maybe"'],
      [{ MQTT_TLS_CLIENT_CA: '-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n' }, 'error: MQTT_TLS_CLIENT_CA must be a PEM CA certificate'],
      [{ MQTT_TLS_IDENTITY: 'cn' }, 'error: MQTT_TLS_IDENTITY needs MQTT_TLS_CLIENT_CA'],
    ];
    for (const [env, expected] of cases) {
      const started = runTs('local/main.ts', [], { ...(await ports()), ...env });
      expect(await started.exited).toBe(1);
      const lines = errorLines(started.output());
      expect(lines).toHaveLength(1);
      expect(lines[0]!.startsWith(expected)).toBe(true);
    }
  }, 60_000);
});
