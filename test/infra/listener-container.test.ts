/**
 * The listener container as its Dockerfile builds and starts it: `npm run build:listener`, then
 * `node --enable-source-maps main.mjs`. No Docker engine here, so the same two steps run on this
 * machine. Nothing is sent that would make it call AWS.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { eventually, RawConnection } from '../support/clients';

const run = promisify(execFile);

describe('listener container', () => {
  it('builds with the Dockerfile\'s npm script, starts from its bundle, and drains on SIGTERM', { timeout: 60_000 }, async () => {
    await run('npm', ['run', 'build:listener'], { cwd: process.cwd() });

    const child = spawn(process.execPath, ['--enable-source-maps', 'dist/listener/main.mjs'], {
      env: {
        PATH: process.env.PATH,
        PACKET_HANDLER_FUNCTION: 'arn:aws:lambda:us-east-1:111111111111:function:packet-handler',
        AWS_REGION: 'us-east-1',
        LISTEN_HOST: '127.0.0.1',
        ADVERTISED_HOST: '127.0.0.1',
        MQTT_PORT: '0',
        MQTT_WS_PORT: '0',
        DELIVERY_PORT: '0',
        DELIVERY_SECRET: 'a-delivery-secret-as-ecs-injects-it-0123456789',
      },
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
