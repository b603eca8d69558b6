/**
 * `npm run bench`: starts the local harness (DynamoDB Local, listener, handlers) in a child
 * process, drives it over loopback with raw MQTT sockets through each scenario, and prints what
 * it measured, with the cost per million messages on AWS beside AWS IoT Core's. Also writes JSON.
 *
 *   npm run bench -- --quick                      a fast, smaller run
 *   npm run bench -- --scenario qos0-1to1         only this scenario (repeatable)
 *   npm run bench -- --compare-mosquitto          the same scenarios against /usr/sbin/mosquitto too
 *   npm run bench -- --target host:port           any MQTT broker instead of the harness (client-side figures only)
 *   npm run bench -- --door apigw                 through the API Gateway emulator (base64 text frames) instead of the listener
 *   npm run bench -- --json out.json              where the JSON goes (default bench/results/<time>.json)
 *   npm run bench -- --list                       the scenarios
 *   npm run bench -- --scenario http-publish      what an HTTP publish costs (bench/http-publish.ts, its own harness)
 * Fleets (fleet-qos0, fleet-qos1, fleet-qos0-depth7, fleet-qos1-depth7, fleet, connect-storm): --devices <n>,
 * --interval <s> between one device's publishes, --qos 0|1 and --depth 5|7 (`fleet` only), --subscribers <n>,
 * --[no-]persistent subscriber sessions, --parallel <n> handshakes in flight.
 * --no-warm-up: measure from a cold start (by default, a broker the bench starts first takes
 * WARM_UP_CLIENTS unmeasured connects and publishes before the first scenario but connack-latency,
 * which measures cold starts itself; see bench/load/fleet.ts warmUp).
 * Tuning: --time-limit <s> per measured phase, --count <n> at most n publishes per scenario,
 * --payload <bytes>, --lambda-memory-mb <MB>,
 * --rate <deliveries/s> the cost model spreads hourly costs over, --dynamodb-endpoint <url>,
 * --log-level <level> of the harness.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { LogLevel } from '../shared/util/logger';
import { DEFAULT_DEPLOYMENT, type Deployment } from './cost-model';
import { newReport, renderReport } from './report';
import { runScenario, type ScenarioResult } from './run';
import { EXTRA_SCENARIOS, SCENARIOS } from './scenarios';
import { qos1Rule } from './scenarios/rule';
import type { FleetFlags, Scenario, Size } from './scenarios/scenario';
import { warmUp } from './load/fleet';
import { externalTarget } from './targets/external';
import { freePort } from '../local/free-port';
import { startHarnessProcess } from './targets/harness-process';
import { mosquittoVersion, startMosquitto, MOSQUITTO_BINARY } from './targets/mosquitto';
import type { BrokerTarget } from './targets/target';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    target: { type: 'string' },
    'compare-mosquitto': { type: 'boolean', default: false },
    door: { type: 'string', default: 'tcp' },
    json: { type: 'string' },
    'time-limit': { type: 'string' },
    payload: { type: 'string' },
    count: { type: 'string' },
    'lambda-memory-mb': { type: 'string' },
    rate: { type: 'string' },
    'dynamodb-endpoint': { type: 'string' },
    'log-level': { type: 'string', default: 'error' },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    devices: { type: 'string' },
    interval: { type: 'string' },
    qos: { type: 'string' },
    depth: { type: 'string' },
    subscribers: { type: 'string' },
    persistent: { type: 'boolean' },
    parallel: { type: 'string' },
    'warm-up': { type: 'boolean', default: true },
  },
  allowNegative: true,
});

const WARM_UP_CLIENTS = 2_000;

async function warmUpTarget(target: BrokerTarget): Promise<void> {
  process.stderr.write(`  warming up: ${WARM_UP_CLIENTS} clients connect, publish once and disconnect, unmeasured...\n`);
  const counters = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, framesIn: 0 };
  await warmUp(target.endpoint, WARM_UP_CLIENTS, (i) => `warm-up-${runId}-${i}`, `bench/${runId}/warm-up`, counters);
  await target.quiesce();
}

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

function positive(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) fail(`${name} must be a positive number, got "${raw}"`);
  return value;
}

function whole(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const value = positive(raw, name, 0);
  if (!Number.isInteger(value)) fail(`${name} must be a whole number, got "${raw}"`);
  return value;
}

function oneOf<T extends number>(raw: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  const value = allowed.find((a) => String(a) === raw);
  if (value === undefined) fail(`${name} must be ${allowed.join(' or ')}, got "${raw}"`);
  return value;
}

const fleetFlags: FleetFlags = dropUndefined({
  devices: whole(flags.devices, '--devices'),
  intervalSeconds: flags.interval === undefined ? undefined : positive(flags.interval, '--interval', 0),
  qos: oneOf(flags.qos, '--qos', [0, 1] as const),
  depth: oneOf(flags.depth, '--depth', [5, 7] as const),
  subscribers: whole(flags.subscribers, '--subscribers'),
  persistent: flags.persistent,
  parallel: whole(flags.parallel, '--parallel'),
});

const size: Size = flags.quick ? 'quick' : 'full';
const ALL = [...SCENARIOS, ...EXTRA_SCENARIOS];
if (flags.help || flags.list) {
  if (flags.help) process.stdout.write(`${readUsage()}\n\n`);
  const line = (s: Scenario): string => `  ${s.name.padEnd(18)} ${s.describe(size, fleetFlags)}`;
  process.stdout.write(`Scenarios (${size}):\n${SCENARIOS.map(line).join('\n')}\nOnly when named:\n${EXTRA_SCENARIOS.map(line).join('\n')}\n`);
  process.exit(0);
}

/** `--scenario http-publish`: bench/http-publish.ts, in a process of its own (it starts its own harness with the HTTP door). */
const HTTP_PUBLISH = 'http-publish';
if (flags.scenario?.includes(HTTP_PUBLISH)) {
  const script = fileURLToPath(new URL('./http-publish.ts', import.meta.url));
  const ran = spawnSync(process.execPath, ['--import', 'tsx', script, ...(flags.count ? ['--count', flags.count] : []), ...(flags.payload ? ['--payload', flags.payload] : [])], { stdio: 'inherit' });
  if (ran.status !== 0) fail(`${HTTP_PUBLISH} failed (exit ${ran.status ?? ran.signal})`);
  if (flags.scenario.every((name) => name === HTTP_PUBLISH)) process.exit(0);
}
const chosen = (flags.scenario ?? []).filter((name) => name !== HTTP_PUBLISH);
const unknown = chosen.filter((name) => !ALL.some((s) => s.name === name));
if (unknown.length > 0) fail(`unknown scenario ${unknown.join(', ')}; the scenarios are ${ALL.map((s) => s.name).join(', ')}`);
const scenarios = chosen.length === 0 ? SCENARIOS : ALL.filter((s) => chosen.includes(s.name));

const deployment: Deployment = {
  ...DEFAULT_DEPLOYMENT,
  lambdaMemoryMb: positive(flags['lambda-memory-mb'], '--lambda-memory-mb', DEFAULT_DEPLOYMENT.lambdaMemoryMb),
  deliveriesPerSecond: positive(flags.rate, '--rate', DEFAULT_DEPLOYMENT.deliveriesPerSecond),
};
const timeLimitMs = positive(flags['time-limit'], '--time-limit', size === 'quick' ? 5 : 20) * 1000;
/** A scenario's own time limit (the fleets'), unless `--time-limit` was given. */
const timeLimitFor = (scenario: Scenario): number =>
  flags['time-limit'] === undefined && scenario.timeLimitSeconds ? scenario.timeLimitSeconds[size] * 1000 : timeLimitMs;
/**
 * A phase in which nothing arrives for this long has ended: longer than the harness takes over
 * one batch of packets (its deliveries leave together at the end of the batch) on a busy machine.
 */
const STALL_MS = 10_000;
const payloadBytes = Math.max(12, Math.round(positive(flags.payload, '--payload', 64)));
const maxPublishes = flags.count === undefined ? undefined : Math.round(positive(flags.count, '--count', 1));

interface TargetPlan {
  readonly label: string;
  readonly owned: boolean;
  start(): Promise<BrokerTarget>;
}

if (flags.door !== 'tcp' && flags.door !== 'apigw') fail(`--door must be tcp or apigw, got "${flags.door}"`);
const door = flags.door;
const plans: TargetPlan[] = [];
if (flags.target) {
  const match = /^(.+):(\d+)$/.exec(flags.target);
  if (!match) fail(`--target must be host:port, got "${flags.target}"`);
  plans.push({ label: flags.target, owned: false, start: async () => externalTarget(match[1]!, Number(match[2]), door) });
} else {
  plans.push({
    label: 'the local harness',
    owned: true,
    start: async () =>
      startHarnessProcess({
        dynamoDbPort: await freePort(),
        door,
        logLevel: flags['log-level'] as LogLevel,
        rules: scenarios.some((scenario) => scenario.name === qos1Rule.name),
        ...(flags['dynamodb-endpoint'] ? { dynamoDbEndpoint: flags['dynamodb-endpoint'] } : {}),
      }),
  });
}
if (flags['compare-mosquitto']) {
  if (!mosquittoVersion()) fail(`--compare-mosquitto needs ${MOSQUITTO_BINARY} (apt-get install -y mosquitto)`);
  plans.push({ label: 'mosquitto', owned: true, start: async () => startMosquitto(await freePort()) });
}

const report = newReport(
  { size, door, scenarios: scenarios.map((s) => s.name), maxPublishes, timeLimitMs, stallMs: STALL_MS, payloadBytes, targets: plans.map((p) => p.label), fleet: fleetFlags },
  deployment,
);
const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
let current: BrokerTarget | undefined;
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write('\ninterrupted: stopping the broker...\n');
  void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
});

for (const plan of plans) {
  process.stderr.write(`starting ${plan.label}...\n`);
  let target: BrokerTarget;
  try {
    target = await plan.start();
  } catch (error) {
    fail(`cannot start ${plan.label}: ${error instanceof Error ? error.message : String(error)}`);
  }
  current = target;
  const restart = async (): Promise<BrokerTarget> => {
    await target.stop();
    current = undefined;
    target = await plan.start();
    current = target;
    return target;
  };
  /** A client has used the broker (warm-up or scenario); whether the warm-up ran on this start of it. */
  let used = false;
  let warmed = false;
  try {
    for (const [index, scenario] of scenarios.entries()) {
      if (interrupted) break;
      if (plan.owned && ((scenario.freshBroker && index > 0) || (scenario.coldBroker && used))) {
        process.stderr.write(`restarting ${plan.label} for ${scenario.name}...\n`);
        await restart();
        // A fresh broker for memory figures keeps the warm-up of no earlier start.
        warmed = scenario.freshBroker === true;
      }
      // The warm-up comes before the first scenario that is not about a cold broker, and again after one.
      if (plan.owned && flags['warm-up'] && !warmed && !scenario.coldBroker) {
        await warmUpTarget(target);
        warmed = true;
      }
      if (scenario.coldBroker) warmed = false;
      used = true;
      process.stderr.write(`  ${scenario.name}: ${scenario.describe(size, fleetFlags)}...\n`);
      const started = Date.now();
      const result = await runScenario(target, scenario, {
        size,
        timeLimitMs: timeLimitFor(scenario),
        stallMs: STALL_MS,
        payloadBytes,
        ...(maxPublishes === undefined ? {} : { maxPublishes }),
        deployment,
        runId,
        ownsBroker: plan.owned,
        fleet: fleetFlags,
        rateGiven: flags.rate !== undefined,
        ...(plan.owned ? { restart } : {}),
      });
      report.results.push(result);
      process.stderr.write(`    ${summary(result)} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    }
  } finally {
    await target.stop();
    current = undefined;
  }
}

report.finishedAt = new Date().toISOString();
report.machine.loadAverage.end = os.loadavg()[0]!;
process.stdout.write(`\n${renderReport(report)}\n`);
const jsonPath = flags.json ?? path.join(fileURLToPath(new URL('./results/', import.meta.url)), `${report.startedAt.replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
const shown = path.relative(process.cwd(), jsonPath);
process.stdout.write(`\nJSON: ${shown.startsWith('..') ? jsonPath : shown}\n`);

function summary(result: ScenarioResult): string {
  if (result.error) return `error: ${result.error}`;
  if (result.connectStorm) {
    return result.connectStorm.rounds
      .map((r) => `${r.parallel} in flight: ${r.connected} of ${r.devices} connected, ${Math.round((r.connected * 1000) / r.connectMs)} connects/s, CONNACK p50 ${r.connackMs.p50.toFixed(1)} ms`)
      .join('; ');
  }
  if (result.connack) {
    const { cold, warm } = result.connack;
    return `CONNACK cold p50 ${cold.p50.toFixed(1)} ms (${cold.samples} starts), warm p50 ${warm.p50.toFixed(1)} ms p99 ${warm.p99.toFixed(1)} ms`;
  }
  if (result.messages && result.fleet) {
    const m = result.messages;
    const f = result.fleet;
    return `${f.connected} of ${f.devices} devices, ${Math.round(f.offeredPerSecond)} msg/s offered, ${Math.round(m.deliveriesPerSecond)} delivered/s, p50 ${m.latencyMs.p50.toFixed(1)} ms, ${m.received} of ${m.expected} received`;
  }
  if (result.messages) {
    const m = result.messages;
    return `${Math.round(m.deliveriesPerSecond)} msg/s, p50 ${m.latencyMs.p50.toFixed(2)} ms, ${m.received} of ${m.expected} received`;
  }
  const c = result.connections!;
  return `${c.count} connections, ${c.rssBytesPerConnection === undefined ? '?' : (c.rssBytesPerConnection / 1024).toFixed(2)} KB RSS each`;
}

function readUsage(): string {
  return 'npm run bench -- [--quick] [--scenario <name>]... [--compare-mosquitto | --target host:port] [--door tcp|apigw] [--json <path>]\n' +
    '  [--time-limit <s>] [--count <n>] [--payload <bytes>] [--lambda-memory-mb <MB>] [--rate <deliveries/s>] [--dynamodb-endpoint <url>] [--log-level <level>]\n' +
    '  fleets: [--devices <n>] [--interval <s>] [--qos 0|1] [--depth 5|7] [--subscribers <n>] [--[no-]persistent] [--parallel <n>]';
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
