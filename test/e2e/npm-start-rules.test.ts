/**
 * `npm start -- --rules FILE` as a user runs it (local/main.ts in its own process): the README's
 * example, a rule sending sensors/+/temp to a webhook, reached by mosquitto_pub; and a rules file
 * with a mistake, refused in one line before anything starts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/clients';
import { freePort } from '../../local/free-port';
import { runTs } from '../support/run-ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'npm-start-rules-'));

describe('npm start --rules', () => {
  it('sends what mosquitto_pub publishes to sensors/d1/temp to the webhook the rules file names', async () => {
    const received: string[] = [];
    const webhook = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push(body);
        response.end();
      });
    });
    const hookPort = await new Promise<number>((resolve) => webhook.listen(0, '127.0.0.1', () => resolve((webhook.address() as AddressInfo).port)));
    const rulesFile = path.join(dir, 'rules.json');
    writeFileSync(rulesFile, JSON.stringify([{ filter: 'sensors/+/temp', target: { type: 'http', url: `http://127.0.0.1:${hookPort}/hook` } }]));
    const [mqtt, ws, apigw] = await Promise.all([freePort(), freePort(), freePort()]);
    const started = runTs('local/main.ts', ['--rules', rulesFile], {
      MQTT_PORT: String(mqtt),
      MQTT_WS_PORT: String(ws),
      APIGW_WS_PORT: String(apigw),
      DYNAMODB_ENDPOINT: inject('dynamoDbEndpoint'),
      TABLE_PREFIX: `rules-${process.pid}`,
    });
    try {
      await eventually(() => started.output().includes('Ctrl-C stops everything'), 'the endpoints to be printed', 30_000);
      expect(started.output()).toContain(`rules                       1 from ${rulesFile}: sensors/+/temp -> http`);
      const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqtt), '-i', 'd1', '-t', 'sensors/d1/temp', '-m', '{"temp": 21.5}'], { stdio: 'ignore' });
      expect(await new Promise((resolve) => pub.on('exit', resolve))).toBe(0);
      await eventually(() => received.length === 1, 'the webhook to be called');
      expect(JSON.parse(received[0]!)).toMatchObject({ messages: [{ topic: 'sensors/d1/temp', payload: '{"temp": 21.5}', clientId: 'd1' }] });
      started.child.kill('SIGINT');
      expect(await started.exited).toBe(0);
    } finally {
      started.child.kill('SIGKILL');
      webhook.close();
    }
  }, 60_000);

  it.each([
    ['MQTT_RULES_FILE', [{ filter: 'sensors/+/temp', target: { type: 'http' } }], (file: string) => `error: ${file}: rules[0].target.url: missing`],
    ['--rules', [{ filter: 'a', target: { type: 'lambda', function: 'not-here' } }], () => 'error: lambda target "not-here" has no local function: give a module path (./handler.ts, exporting handler) or register it with the harness'],
  ])('refuses a rules file with a mistake (%s) in one line', async (how, rules, message) => {
    const file = path.join(dir, `bad-${how}.json`);
    writeFileSync(file, JSON.stringify(rules));
    const started = runTs('local/main.ts', how === '--rules' ? ['--rules', file] : [], {
      ...(how === 'MQTT_RULES_FILE' ? { MQTT_RULES_FILE: file } : {}),
      DYNAMODB_ENDPOINT: inject('dynamoDbEndpoint'),
      TABLE_PREFIX: `rules-bad-${process.pid}`,
      MQTT_PORT: String(await freePort()),
      MQTT_WS_PORT: String(await freePort()),
      APIGW_WS_PORT: String(await freePort()),
    });
    expect(await started.exited).toBe(1);
    expect(started.output().split('\n').filter((line) => line.startsWith('error:'))).toEqual([message(file)]);
  }, 30_000);
});
