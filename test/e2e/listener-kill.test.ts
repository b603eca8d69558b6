/**
 * A listener killed with SIGKILL (a Fargate task that dies without draining): its sockets vanish
 * without a close reaching the handler. The sweeper finds the connections whose door no longer
 * answers and ends them: the will is published, and a persistent session stays, queueing what is
 * published meanwhile, for the client to collect through another listener.
 *
 * The killed listener is `npm start` (local/main.ts) in a child process; the surviving one is this
 * process's harness. Both use the same tables on the same DynamoDB Local, as two tasks do in AWS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHarness, type Harness } from '../../local/harness';
import { collect, connectClient, endAll, eventually } from '../support/clients';
import { freePort } from '../../local/free-port';

const root = path.resolve(import.meta.dirname, '../..');
const tablePrefix = `kill-${process.pid}`;
let harness: Harness;
let child: ChildProcess | undefined;

beforeAll(async () => {
  harness = await startHarness({
    dynamoDbEndpoint: inject('dynamoDbEndpoint'),
    tablePrefix,
    mqttPort: 0,
    wsPort: 0,
    apigwPort: 0,
    logLevel: 'error',
    sweepIntervalMs: 3_600_000, // the test runs the sweeper itself
  });
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await harness?.stop();
});

/** `npm start` on free ports against the shared DynamoDB and tables; resolves with its MQTT port once it serves. */
async function startOtherListener(): Promise<{ process: ChildProcess; mqttPort: number; exited: Promise<string | null> }> {
  const [mqttPort, wsPort, apigwPort, consolePort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const started = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      DYNAMODB_ENDPOINT: inject('dynamoDbEndpoint'),
      TABLE_PREFIX: tablePrefix,
      MQTT_PORT: String(mqttPort),
      MQTT_WS_PORT: String(wsPort),
      APIGW_WS_PORT: String(apigwPort),
      CONSOLE_PORT: String(consolePort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = started;
  let output = '';
  started.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  started.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<string | null>((resolve) => started.on('exit', (_code, signal) => resolve(signal)));
  await eventually(() => output.includes('Ctrl-C stops everything') || started.exitCode !== null, 'the other listener to start', 60_000);
  if (started.exitCode !== null) throw new Error(`the other listener exited: ${output}`);
  return { process: started, mqttPort, exited };
}

describe('a listener killed with SIGKILL', () => {
  it('[MQTT-3.1.2-8] the will is published, and the persistent session keeps its QoS 1 messages for the client reconnecting elsewhere', async () => {
    const other = await startOtherListener();
    const id = `${process.pid}-${Date.now()}`;
    const willTopic = `kill/will/${id}`;
    const queueTopic = `kill/queue/${id}`;

    const watcher = await connectClient(harness.mqttUrl, { protocolVersion: 5, clientId: `watcher-${id}`, clean: true });
    const wills = collect(watcher);
    await watcher.subscribeAsync(willTopic, { qos: 1 });

    const deviceOptions = {
      protocolVersion: 5 as const,
      clientId: `device-${id}`,
      clean: false,
      properties: { sessionExpiryInterval: 600 },
    };
    const device = await connectClient(`mqtt://127.0.0.1:${other.mqttPort}`, {
      ...deviceOptions,
      will: { topic: willTopic, payload: Buffer.from('device lost'), qos: 1, retain: false },
    });
    await device.subscribeAsync(queueTopic, { qos: 1 });
    device.on('error', () => undefined);

    other.process.kill('SIGKILL');
    expect(await other.exited).toBe('SIGKILL');
    device.end(true); // its socket died with the listener; MQTT.js must not reconnect by itself

    // Nothing told the broker: the will waits for the sweeper.
    expect(wills).toEqual([]);
    const swept = await harness.sweep();
    expect(swept.ended).toBeGreaterThanOrEqual(1);
    await eventually(() => wills.length > 0, 'the will of the client on the killed listener');
    expect(wills.map((m) => m.payload)).toEqual(['device lost']);

    // Published while the device is away: queued in its session.
    const publisher = await connectClient(harness.mqttUrl, { protocolVersion: 5, clientId: `publisher-${id}`, clean: true });
    for (const n of [1, 2, 3]) await publisher.publishAsync(queueTopic, `queued ${n}`, { qos: 1 });

    const back = mqtt.connect(harness.mqttUrl, { ...deviceOptions, reconnectPeriod: 0 });
    const received = collect(back);
    let sessionPresent: boolean | undefined;
    back.on('connect', (connack) => (sessionPresent = connack.sessionPresent));
    await eventually(() => sessionPresent !== undefined, 'the CONNACK through the surviving listener');
    expect(sessionPresent).toBe(true);
    await eventually(() => received.length >= 3, 'the queued QoS 1 messages');
    expect(received.map((m) => m.payload)).toEqual(['queued 1', 'queued 2', 'queued 3']);
    expect(received.every((m) => m.qos === 1)).toBe(true);
    expect(wills.length).toBe(1);
    await endAll(back, publisher, watcher);
  }, 90_000);
});
