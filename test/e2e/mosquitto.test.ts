/**
 * Debian's mosquitto_pub and mosquitto_sub against the TCP door, in both protocol versions:
 * QoS 0/1/2, wildcards, retained messages, persistent sessions and wills.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness();

interface Subscriber {
  readonly lines: string[];
  readonly exited: Promise<number | null>;
  readonly process: ChildProcessWithoutNullStreams;
}

/**
 * Starts mosquitto_sub and resolves once its SUBACK has arrived (seen in its debug output), or at
 * once when `subscribed` is false (a resumed session's messages may end it before its SUBACK).
 */
async function mosquittoSub(args: string[], { subscribed: waitForSuback = true } = {}): Promise<Subscriber> {
  // stdbuf: mosquitto_sub block-buffers stdout into a pipe, and the test reads it line by line
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(harness().mqttPort), '-d', '-W', '20', ...args]);
  const lines: string[] = [];
  let subscribed = false;
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const line of parts) {
      if (line.includes('received SUBACK')) subscribed = true;
      else if (!/^Client .* (sending|received) /.test(line) && !line.startsWith('Subscribed (mid')) lines.push(line);
    }
  });
  // 'close', not 'exit': the last lines may still be in the pipe when the process exits.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  if (waitForSuback) await eventually(() => subscribed, 'mosquitto_sub to be subscribed');
  return { lines, exited, process: child };
}

function mosquittoPub(args: string[]): Promise<number | null> {
  const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(harness().mqttPort), ...args], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

describe('mosquitto_pub and mosquitto_sub over TCP', () => {
  for (const version of ['mqttv311', 'mqttv5'] as const) {
    it(`${version}: mosquitto_sub receives what mosquitto_pub sends at QoS 0, 1 and 2`, async () => {
      const root = `mosq/${version}/${Date.now()}`;
      const sub = await mosquittoSub(['-V', version, '-t', `${root}/#`, '-q', '2', '-v', '-C', '3']);
      for (const qos of [0, 1, 2]) {
        expect(await mosquittoPub(['-V', version, '-t', `${root}/q${qos}`, '-m', `hello ${qos}`, '-q', String(qos)])).toBe(0);
      }
      expect(await sub.exited).toBe(0);
      expect(sub.lines).toEqual([`${root}/q0 hello 0`, `${root}/q1 hello 1`, `${root}/q2 hello 2`]);
    });
  }

  it('a wildcard subscriber sees only the matching topics', async () => {
    const root = `mosq/wild/${Date.now()}`;
    const sub = await mosquittoSub(['-t', `${root}/+/temp`, '-v', '-C', '2']);
    for (const topic of [`${root}/kitchen/temp`, `${root}/kitchen/humidity`, `${root}/hall/temp`]) {
      expect(await mosquittoPub(['-t', topic, '-m', 'x', '-q', '1'])).toBe(0);
    }
    expect(await sub.exited).toBe(0);
    expect(sub.lines).toEqual([`${root}/kitchen/temp x`, `${root}/hall/temp x`]);
  });

  for (const version of ['mqttv311', 'mqttv5'] as const) {
    it(`${version}: [MQTT-3.3.1-5] mosquitto_sub gets mosquitto_pub's retained message, with the retain flag`, async () => {
      const topic = `mosq/${version}/retained/${Date.now()}`;
      expect(await mosquittoPub(['-V', version, '-t', topic, '-m', 'kept', '-q', '1', '-r'])).toBe(0);
      // %r is the retain flag, %q the QoS
      const sub = await mosquittoSub(['-V', version, '-t', topic, '-q', '1', '-C', '1', '-F', '%r %q %t %p']);
      expect(await sub.exited).toBe(0);
      expect(sub.lines).toEqual([`1 1 ${topic} kept`]);
    });

    it(`${version}: [MQTT-3.1.2-5] a persistent mosquitto_sub session (-c) gets the QoS 1 messages published while it was away`, async () => {
      const topic = `mosq/${version}/session/${Date.now()}`;
      const id = `mosq-${version}-${process.pid}-${Date.now()}`;
      // subscribe, then leave with a normal DISCONNECT (-E), keeping the session
      const first = await mosquittoSub(['-V', version, '-c', '-i', id, '-q', '1', '-t', topic, '-E']);
      expect(await first.exited).toBe(0);
      for (const n of [1, 2, 3]) expect(await mosquittoPub(['-V', version, '-t', topic, '-m', `m${n}`, '-q', '1'])).toBe(0);
      const back = await mosquittoSub(['-V', version, '-c', '-i', id, '-q', '1', '-t', topic, '-C', '3', '-v'], { subscribed: false });
      expect(await back.exited).toBe(0);
      expect(back.lines).toEqual([`${topic} m1`, `${topic} m2`, `${topic} m3`]);
    });

    it(`${version}: [MQTT-3.1.2-8] mosquitto_sub's will is published when it dies without DISCONNECT`, async () => {
      const willTopic = `mosq/${version}/will/${Date.now()}`;
      const watcher = await mosquittoSub(['-V', version, '-t', willTopic, '-q', '1', '-C', '1', '-v']);
      const dying = await mosquittoSub(['-V', version, '-t', `${willTopic}/unused`, '--will-topic', willTopic, '--will-payload', 'bye', '--will-qos', '1']);
      dying.process.kill('SIGKILL');
      expect(await watcher.exited).toBe(0);
      expect(watcher.lines).toEqual([`${willTopic} bye`]);
    });
  }
});
