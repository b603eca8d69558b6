/** Runs a TypeScript entry point of the project (`npm start`'s local/main.ts, the users CLI) as a child process, collecting its output. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

export interface Started {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

export function runTs(script: string, args: string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: root,
    // CONSOLE_PORT 0 (any free port) unless a test names one: never the shared default 8080,
    // which another test's npm start may hold.
    env: { ...process.env, LOG_LEVEL: 'warn', CONSOLE_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}
