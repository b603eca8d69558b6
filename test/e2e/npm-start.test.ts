/**
 * `npm start` as a user runs it (local/main.ts in its own process): it prints its endpoints,
 * serves MQTT, stops on Ctrl-C leaving no Java process behind, and explains misconfiguration
 * in one line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { connectClient, collect, eventually } from '../support/clients';
import { freePort } from '../../local/free-port';
import { runTs, type Started } from '../support/run-ts';

function startMain(env: NodeJS.ProcessEnv): Started {
  return runTs('local/main.ts', [], env);
}

function childJavaPids(pid: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=,comm=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((line) => line.includes('java'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it('prints every endpoint, serves MQTT, and Ctrl-C stops everything including Java', async () => {
    const [mqtt, ws, apigw, dynamo, web, http] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const started = startMain({ MQTT_PORT: String(mqtt), MQTT_WS_PORT: String(ws), APIGW_WS_PORT: String(apigw), DYNAMODB_PORT: String(dynamo), CONSOLE_PORT: String(web), HTTP_PORT: String(http) });
    try {
      await eventually(() => started.output().includes('Ctrl-C stops everything'), 'the endpoints to be printed', 60_000);
      for (const endpoint of [`mqtt://127.0.0.1:${mqtt}`, `ws://127.0.0.1:${ws}/mqtt`, `ws://127.0.0.1:${apigw}`, `http://127.0.0.1:${dynamo}`, `http://127.0.0.1:${web}`, `http://127.0.0.1:${http}/topics/`, `http://127.0.0.1:${http}/events`]) {
        expect(started.output()).toContain(endpoint);
      }
      // the web console is served, and knows where the API Gateway door is
      expect(await (await fetch(`http://127.0.0.1:${web}/config.json`)).json()).toEqual({ apiGatewayUrl: `ws://127.0.0.1:${apigw}` });
      const javaPids = childJavaPids(started.child.pid!);
      expect(javaPids).toHaveLength(1);

      const client = await connectClient(`mqtt://127.0.0.1:${mqtt}`);
      const got = collect(client);
      await client.subscribeAsync('demo/#');
      await client.publishAsync('demo/hello', 'hi', { qos: 1 });
      await eventually(() => got.length === 1, 'the demo message');
      // HTTP publish, anonymous as npm start allows by default
      expect((await fetch(`http://127.0.0.1:${http}/topics/demo/http?qos=1`, { method: 'POST', body: 'over http' })).status).toBe(200);
      await eventually(() => got.length === 2, 'the message published over HTTP');
      await client.endAsync();

      started.child.kill('SIGINT');
      expect(await started.exited).toBe(0);
      await eventually(() => !alive(javaPids[0]!), 'DynamoDB Local to be gone', 10_000);
    } finally {
      started.child.kill('SIGKILL');
    }
  }, 90_000);

  it('uses an existing DynamoDB when DYNAMODB_ENDPOINT is set, starting no Java', async () => {
    const [mqtt, ws, apigw, web, http] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const started = startMain({
      MQTT_PORT: String(mqtt),
      MQTT_WS_PORT: String(ws),
      APIGW_WS_PORT: String(apigw),
      CONSOLE_PORT: String(web),
      HTTP_PORT: String(http),
      DYNAMODB_ENDPOINT: inject('dynamoDbEndpoint'),
      TABLE_PREFIX: `start-${process.pid}`,
    });
    try {
      await eventually(() => started.output().includes('Ctrl-C stops everything'), 'the endpoints to be printed', 30_000);
      expect(childJavaPids(started.child.pid!)).toEqual([]);
      expect(started.output()).toContain(inject('dynamoDbEndpoint'));
      const client = await connectClient(`mqtt://127.0.0.1:${mqtt}`, { protocolVersion: 5 });
      await client.endAsync();
      started.child.kill('SIGINT');
      expect(await started.exited).toBe(0);
    } finally {
      started.child.kill('SIGKILL');
    }
  }, 60_000);

  it('says in one line which port is taken and what to do', async () => {
    const blocker = net.createServer();
    const taken = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)));
    try {
      const started = startMain({ DYNAMODB_PORT: String(taken) });
      expect(await started.exited).toBe(1);
      const errorLines = started.output().split('\n').filter((line) => line.startsWith('error:'));
      expect(errorLines).toEqual([`error: DynamoDB Local port ${taken} is taken: set DYNAMODB_PORT to a free port, or DYNAMODB_ENDPOINT to use the DynamoDB already running there`]);
    } finally {
      blocker.close();
    }
  }, 30_000);

  it('says in one line that Java is missing and how to fix it', async () => {
    // A PATH holding only node: no java on it.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'no-java-'));
    symlinkSync(process.execPath, path.join(bin, 'node'));
    const started = startMain({ PATH: bin, DYNAMODB_PORT: String(await freePort()) });
    expect(await started.exited).toBe(1);
    const errorLines = started.output().split('\n').filter((line) => line.startsWith('error:'));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toMatch(/^error: java was not found: DynamoDB Local needs Java 17\+ \(apt-get install -y openjdk-17-jre-headless\)/);
  }, 30_000);
});
