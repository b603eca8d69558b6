/**
 * The listener container as its Dockerfile builds and starts it: `npm run build:listener`, then
 * `node --enable-source-maps main.mjs`. No Docker engine here, so the same two steps run on this
 * machine. Nothing is sent that would make it call AWS.
 */
import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { issueServerCertificate } from '../../functions/tls/certificates';
import { eventually, RawConnection } from '../support/clients';
import { createCertificateAuthority, issueDeviceCertificate } from '../support/device-certificates';
import { proxyHeader } from '../support/proxy-header';

const run = promisify(execFile);

/** What the container needs to start here (free ports on loopback; no call reaches AWS). */
const containerEnv = {
  PATH: process.env.PATH,
  PACKET_HANDLER_FUNCTION: 'arn:aws:lambda:us-east-1:111111111111:function:packet-handler',
  AWS_REGION: 'us-east-1',
  LISTEN_HOST: '127.0.0.1',
  ADVERTISED_HOST: '127.0.0.1',
  MQTT_PORT: '0',
  MQTT_WS_PORT: '0',
  DELIVERY_PORT: '0',
  DELIVERY_SECRET: 'a-delivery-secret-as-ecs-injects-it-0123456789',
};

describe('listener container', () => {
  it('builds with the Dockerfile\'s npm script, starts from its bundle, and drains on SIGTERM', { timeout: 60_000 }, async () => {
    await run('npm', ['run', 'build:listener'], { cwd: process.cwd() });

    const child = spawn(process.execPath, ['--enable-source-maps', 'dist/listener/main.mjs'], {
      env: containerEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // The listener's JSON log lines (Node's own warnings also go to stderr, as plain text).
    const lines: Array<Record<string, unknown>> = [];
    let pending = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (pending + chunk).split('\n');
      pending = parts.pop()!;
      for (const line of parts.filter((l) => l.startsWith('{'))) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await eventually(() => lines.some((l) => l.message === 'listener started'), 'the listener to start');
      const started = lines.find((l) => l.message === 'listener started')!;
      // A socket that sent nothing, like the load balancer's health check.
      const probe = await RawConnection.tcp(started.mqttPort as number);

      child.kill('SIGTERM');

      expect(await exited).toBe(0);
      await probe.waitClosed();
      // No AWS credentials here: the task's heartbeat (an invoke of the packet handler) fails, and says so.
      expect(lines.map((l) => l.message).filter((m) => m !== 'heartbeat failed')).toEqual(['listener started', 'SIGTERM: draining connections']);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses to start without the delivery secret, in one line that names it', { timeout: 60_000 }, async () => {
    await run('npm', ['run', 'build:listener'], { cwd: process.cwd() });
    const base = { PATH: process.env.PATH, PACKET_HANDLER_FUNCTION: 'packet-handler', AWS_REGION: 'us-east-1', LISTEN_HOST: '127.0.0.1', ADVERTISED_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_WS_PORT: '0', DELIVERY_PORT: '0' };
    for (const env of [base, { ...base, DELIVERY_SECRET: 'too-short' }]) {
      const failed = await run(process.execPath, ['dist/listener/main.mjs'], { env }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failed?.code).toBe(1);
      const lines = failed!.stderr.split('\n').filter((l) => l.startsWith('{'));
      expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual([
        'DELIVERY_SECRET must hold the delivery secret (at least 32 characters): the delivery endpoint accepts only requests signed with it',
      ]);
    }
  });
});

describe('listener container with device certificates', () => {
  it('serves TLS on MQTT_TLS_PORT behind the PROXY header, with the certificate and key as ECS injects them, and asks devices for certificates from MQTT_TLS_CLIENT_CA', { timeout: 60_000 }, async () => {
    await run('npm', ['run', 'build:listener'], { cwd: process.cwd() });
    const ca = await createCertificateAuthority('device CA');
    const server = await issueServerCertificate(ca, 'localhost');
    const device = await issueDeviceCertificate(ca, 'sensor-1');
    const child = spawn(process.execPath, ['dist/listener/main.mjs'], {
      env: {
        ...containerEnv,
        MQTT_PROXY_PROTOCOL: 'true',
        MQTT_TLS_PORT: '0',
        MQTT_TLS_CERT: server.certificate + server.chain,
        MQTT_TLS_KEY: server.privateKey,
        MQTT_TLS_CLIENT_CA: ca.certificate,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let output = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    try {
      await eventually(() => output.includes('"listener started"'), 'the listener to start');
      const started = JSON.parse(output.split('\n').find((l) => l.includes('"listener started"'))!) as { mqttsPort: number; deviceCertificates: string };
      expect(started.deviceCertificates).toBe('cn');
      const handshake = (cert?: { cert: string; key: string }) =>
        new Promise<'open' | 'refused'>((resolve) => {
          const socket = net.connect(started.mqttsPort, '127.0.0.1');
          socket.write(proxyHeader('198.51.100.9'));
          const secure = tls.connect({ socket, servername: 'localhost', ca: ca.certificate, ...cert });
          // TLS 1.3: the client's side is done before the server has checked its certificate; a refusal follows as an alert.
          secure.once('secureConnect', () => setTimeout(() => resolve(secure.destroyed ? 'refused' : 'open'), 500));
          secure.once('error', () => resolve('refused'));
          secure.once('close', () => resolve('refused'));
        });
      expect(await handshake({ cert: device.cert, key: device.key })).toBe('open');
      expect(await handshake()).toBe('refused');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses to start with MQTT_TLS_CLIENT_CA but no MQTT_TLS_PORT, or a TLS port without a certificate, in one line', { timeout: 60_000 }, async () => {
    await run('npm', ['run', 'build:listener'], { cwd: process.cwd() });
    const ca = await createCertificateAuthority('device CA');
    const base = { PATH: process.env.PATH, PACKET_HANDLER_FUNCTION: 'packet-handler', AWS_REGION: 'us-east-1', ADVERTISED_HOST: '127.0.0.1', DELIVERY_SECRET: 'a-delivery-secret-as-ecs-injects-it-0123456789' };
    for (const [env, message] of [
      [{ ...base, MQTT_TLS_CLIENT_CA: ca.certificate }, 'MQTT_TLS_CLIENT_CA needs MQTT_TLS_PORT (the port devices with certificates connect to)'],
      [{ ...base, MQTT_TLS_PORT: '8883' }, 'MQTT_TLS_PORT needs MQTT_TLS_CERT and MQTT_TLS_KEY (the server certificate and key)'],
    ] as const) {
      const failed = await run(process.execPath, ['dist/listener/main.mjs'], { env }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failed?.code).toBe(1);
      expect(failed!.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { message: string }).message)).toEqual([message]);
    }
  });
});
