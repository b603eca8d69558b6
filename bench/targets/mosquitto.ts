/**
 * Mosquitto from Debian (`apt-get install -y mosquitto`), for comparison in the same run: started
 * on a free loopback port with a generated configuration, stopped afterwards. Its CPU time and
 * memory are read from /proc.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cpuMs, rssBytes } from './proc';
import type { BrokerTarget } from './target';

export const MOSQUITTO_BINARY = '/usr/sbin/mosquitto';

/**
 * Defaults, except: no persistence file, no connection limit, a queue large enough that the
 * 10,000 retained messages of the replay scenario are not dropped for a QoS 1 subscriber.
 */
function configuration(port: number): string {
  return [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'max_connections -1',
    'max_queued_messages 100000',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    '',
  ].join('\n');
}

export function mosquittoVersion(): string | undefined {
  const probe = spawnSync(MOSQUITTO_BINARY, ['-h'], { encoding: 'utf8' });
  if (probe.error) return undefined;
  return /mosquitto version (\S+)/.exec(probe.stdout)?.[1] ?? 'unknown version';
}

export async function startMosquitto(port: number): Promise<BrokerTarget> {
  const version = mosquittoVersion();
  if (!version) throw new Error(`${MOSQUITTO_BINARY} was not found: apt-get install -y mosquitto`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-mosquitto-'));
  const configFile = path.join(dir, 'mosquitto.conf');
  writeFileSync(configFile, configuration(port));
  const child = spawn(MOSQUITTO_BINARY, ['-c', configFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanUp = (): void => {
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, exited);
  } catch (error) {
    child.kill('SIGKILL');
    cleanUp();
    throw error;
  }
  const pid = child.pid!;
  return {
    name: `mosquitto ${version}`,
    endpoint: { host: '127.0.0.1', port },
    snapshot: async () => {
      const broker = cpuMs(pid);
      const rss = rssBytes(pid);
      return { ...(broker === undefined ? {} : { cpuMs: { broker } }), ...(rss === undefined ? {} : { memory: { rssBytes: rss } }) };
    },
    quiesce: async () => undefined,
    stop: async () => {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      cleanUp();
    },
  };
}

async function waitForPort(port: number, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error('mosquitto exited at start (see its error above)');
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`mosquitto did not listen on port ${port} within 10 s`);
}
