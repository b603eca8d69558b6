/**
 * Command-line clients as a person would run them: curl for the HTTP door, Debian's mosquitto_sub
 * and mosquitto_pub for MQTT. Each process is the test's own, ended by its pid.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { eventually } from './clients';

export interface CurlResponse {
  readonly status: number;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Runs `curl -s -i <args>` to completion (stdin: `input`, for `--data-binary @-`); its response parsed. */
export async function curl(args: readonly string[], input?: Buffer): Promise<CurlResponse> {
  const child = spawn('curl', ['-s', '-S', '-i', '--max-time', '20', ...args]);
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  child.stdin.end(input ?? Buffer.alloc(0));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`curl exited with ${code}: ${err}`);
  const raw = Buffer.concat(out);
  const split = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.subarray(0, split).toString('latin1').split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: raw.subarray(split + 4) };
}

/** A long-running process whose stdout the test reads as it comes. */
export interface Running {
  output(): string;
  readonly exited: Promise<number | null>;
  stop(): void;
}

function running(command: string, args: readonly string[]): Running {
  const child: ChildProcessWithoutNullStreams = spawn(command, args);
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  // 'close', not 'exit': the last output may still be in the pipe when the process exits.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { output: () => text, exited, stop: () => void (child.exitCode === null && child.kill()) };
}

/** `curl -N` on a server-sent events URL, resolved once the stream has started (its first comment). */
export async function curlStream(url: string, args: readonly string[] = []): Promise<Running> {
  const stream = running('curl', ['-s', '-N', ...args, url]);
  await eventually(() => stream.output().includes(': subscribed'), `the event stream at ${url} to start`);
  return stream;
}

/** mosquitto_sub, resolved once its SUBACK arrived; its output lines are the messages (debug lines left out). */
export async function mosquittoSub(port: number, args: readonly string[]): Promise<Running> {
  // stdbuf: mosquitto_sub block-buffers stdout into a pipe, and the test reads it line by line
  const sub = running('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(port), '-d', '-W', '20', ...args]);
  await eventually(() => sub.output().includes('received SUBACK'), 'mosquitto_sub to be subscribed');
  return {
    ...sub,
    output: () =>
      sub
        .output()
        .split('\n')
        .filter((line) => line !== '' && !/^Client .* (sending|received) /.test(line) && !line.startsWith('Subscribed (mid'))
        .join('\n'),
  };
}

export function mosquittoPub(port: number, args: readonly string[]): Promise<number | null> {
  const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...args], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('close', (code) => resolve(code)));
}
