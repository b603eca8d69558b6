/**
 * The local harness (DynamoDB Local, listener, handlers) as a target, in a child process of its
 * own: the broker's CPU time and memory are then its own, as on AWS, and the generator's are not
 * in them. Counters travel over the IPC channel; CPU time is read from /proc.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LogLevel } from '../../shared/util/logger';
import type { Door } from '../load/pipes';
import type { ChildCommand, ChildMessage, ChildOptions, ChildRequest } from './harness-child';
import { childrenOf, commandOf, cpuMs, rssBytes } from './proc';
import type { BrokerSnapshot, BrokerTarget } from './target';

export interface HarnessProcessOptions {
  /** Use this DynamoDB instead of starting DynamoDB Local on `dynamoDbPort`. */
  readonly dynamoDbEndpoint?: string;
  readonly dynamoDbPort: number;
  readonly logLevel: LogLevel;
  /** Which door the load generator uses: the listener's TCP port, or the API Gateway emulator. */
  readonly door: Door;
  /** Load the `qos1-rule` scenario's rule (bench/scenarios/rule.ts). */
  readonly rules?: boolean;
}

const READY_TIMEOUT_MS = 120_000;

export async function startHarnessProcess(options: HarnessProcessOptions): Promise<BrokerTarget> {
  const childOptions: ChildOptions = {
    logLevel: options.logLevel,
    ...(options.rules ? { rules: true } : {}),
    ...(options.dynamoDbEndpoint ? { dynamoDbEndpoint: options.dynamoDbEndpoint } : { dynamoDbPort: options.dynamoDbPort }),
  };
  // BENCH_CPU_PROF=<dir>: the harness writes a V8 CPU profile there when it stops.
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  const child = fork(fileURLToPath(new URL('./harness-child.ts', import.meta.url)), [], {
    execArgv: ['--import', import.meta.resolve('tsx'), '--expose-gc', ...profile],
    env: { ...process.env, BENCH_HARNESS_OPTIONS: JSON.stringify(childOptions) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // SIGTERM, not SIGKILL: the child stops DynamoDB Local on its way out.
  const killOnExit = (): void => void child.kill('SIGTERM');
  process.once('exit', killOnExit);

  let ready: Extract<ChildMessage, { type: 'ready' }>;
  try {
    ready = await waitReady(child);
  } catch (error) {
    child.kill('SIGKILL');
    process.off('exit', killOnExit);
    throw error;
  }

  let nextId = 1;
  const pending = new Map<number, (snapshot: BrokerSnapshot | undefined) => void>();
  child.on('message', (message: ChildMessage) => {
    if (message.type !== 'answer') return;
    pending.get(message.id)?.(message.snapshot);
    pending.delete(message.id);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    for (const answer of pending.values()) answer(undefined);
    pending.clear();
  });
  const ask = (request: ChildCommand): Promise<BrokerSnapshot | undefined> => {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(undefined);
    const id = nextId++;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      child.send({ ...request, id } satisfies ChildRequest);
    });
  };
  const dynamoDbLocalPid = (): number | undefined => childrenOf(child.pid!).find((pid) => commandOf(pid).includes('DynamoDBLocal'));

  return {
    name: options.door === 'apigw' ? 'serverless (API Gateway door)' : 'serverless (local harness)',
    endpoint: { host: '127.0.0.1', port: options.door === 'apigw' ? ready.apigwPort : ready.mqttPort, door: options.door },
    snapshot: async ({ gc = false } = {}) => {
      const answer = await ask({ op: 'snapshot', gc });
      const javaPid = dynamoDbLocalPid();
      const broker = cpuMs(child.pid!);
      const dynamoDbLocal = javaPid === undefined ? undefined : cpuMs(javaPid);
      const rss = rssBytes(child.pid!);
      return {
        ...(answer?.counters ? { counters: answer.counters } : {}),
        ...(broker === undefined ? {} : { cpuMs: { broker, ...(dynamoDbLocal === undefined ? {} : { dynamoDbLocal }) } }),
        ...(answer?.memory ? { memory: { ...answer.memory, rssBytes: rss ?? answer.memory.rssBytes } } : {}),
      };
    },
    quiesce: async () => void (await ask({ op: 'quiesce' })),
    stop: async () => {
      await ask({ op: 'stop' });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 15_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      process.off('exit', killOnExit);
    },
  };
}

function waitReady(child: ChildProcess): Promise<Extract<ChildMessage, { type: 'ready' }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the harness did not start within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message);
      } else if (message.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`the harness failed to start: ${message.error}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the harness exited at start (code ${code})`));
    });
  });
}
