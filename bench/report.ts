/** The benchmark's printed tables and its JSON document. */
import os from 'node:os';
import { AWS_LIST_PRICES, type Deployment, type Prices } from './cost-model';
import type { ScenarioResult } from './run';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly node: string;
  readonly os: string;
  /** 1-minute load average when the run started and ended: other work on the machine shows here. */
  readonly loadAverage: { readonly start: number; end?: number };
}

export interface BenchReport {
  readonly startedAt: string;
  finishedAt?: string;
  readonly machine: Machine;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly deployment: Deployment;
  readonly prices: Prices;
  readonly results: ScenarioResult[];
}

export function describeMachine(): Machine {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    loadAverage: { start: os.loadavg()[0]! },
  };
}

export function newReport(settings: Record<string, unknown>, deployment: Deployment): BenchReport {
  return { startedAt: new Date().toISOString(), machine: describeMachine(), settings, deployment, prices: AWS_LIST_PRICES, results: [] };
}

const DASH = '–';
const significant = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });
const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function count(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? DASH : whole.format(n);
}

function small(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? DASH : significant.format(n);
}

function ms(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return DASH;
  return n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0);
}

function dollars(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? DASH : `$${significant.format(n)}`;
}

function kilobytes(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? DASH : `${(bytes / 1024).toFixed(2)} KB`;
}

function percent(part: number | undefined, whole: number): string {
  return part === undefined || whole <= 0 ? DASH : `${Math.round((100 * part) / whole)}`;
}

/** Broker CPU / DynamoDB Local CPU / load generator CPU, each as % of one core over the measured phase. */
function cpuColumn(result: ScenarioResult): string {
  const cpu = result.cpu;
  if (!cpu) return DASH;
  return [percent(cpu.brokerMs, cpu.wallMs), percent(cpu.dynamoDbLocalMs, cpu.wallMs), percent(cpu.generatorMs, cpu.wallMs)].join('/');
}

function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // Text columns (the first two) align left, figures right.
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function messagesTable(results: readonly ScenarioResult[]): string {
  const rows = results
    .filter((r) => (r.messages && !r.fleet) || (r.error && !r.connections && !isFleet(r)))
    .map((r) => {
      const m = r.messages;
      if (!m) return [r.scenario, r.broker, `error: ${r.error}`, ...Array(14).fill('')];
      return [
        r.scenario,
        r.broker,
        `${count(m.publishes)}${m.timeLimited ? '*' : ''}`,
        count(m.received),
        count(m.lost),
        count(m.duplicates),
        count(m.outOfOrder),
        count(m.deliveriesPerSecond),
        ms(m.latencyMs.p50),
        ms(m.latencyMs.p99),
        small(r.per?.dynamoDbCalls),
        small(r.per?.readUnits),
        small(r.per?.writeUnits),
        small(r.per?.invocations),
        cpuColumn(r),
        dollars(r.cost?.serverless?.total),
        dollars(r.cost?.iotCore.total),
      ];
    });
  return table(
    ['scenario', 'broker', 'sent', 'received', 'missing', 'dup', 'reordered', 'msg/s', 'p50 ms', 'p99 ms', 'DDB calls', 'RCU', 'WCU', 'invocations', 'CPU %', '$/M ours', '$/M IoT Core'],
    rows,
  );
}

/** Fleet and connect-storm scenarios report in tables of their own. */
function isFleet(result: ScenarioResult): boolean {
  return result.fleet !== undefined || result.connectStorm !== undefined || result.scenario.startsWith('fleet') || result.scenario === 'connect-storm';
}

function sum(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function rate(n: number, ms: number): string {
  return ms > 0 ? count((n * 1000) / ms) : DASH;
}

export function fleetTable(results: readonly ScenarioResult[]): string {
  const rows = results
    .filter((r) => r.fleet || (r.error && r.scenario.startsWith('fleet')))
    .map((r) => {
      const m = r.messages;
      const f = r.fleet;
      if (!m || !f) return [r.scenario, r.broker, `error: ${r.error}`, ...Array(19).fill('')];
      return [
        r.scenario,
        r.broker,
        `${count(f.connected)}/${count(f.devices)}`,
        rate(f.connected, f.connectMs),
        count(sum(f.refused) + sum(f.failed)),
        count(sum(f.closedByBroker)),
        count(f.offeredPerSecond),
        count(m.deliveriesPerSecond),
        ms(m.latencyMs.p50),
        ms(m.latencyMs.p99),
        count(m.lost),
        f.acknowledgedLost === undefined ? DASH : count(f.acknowledgedLost),
        count(m.duplicates),
        count(m.outOfOrder),
        small(r.per?.invocations),
        small(r.per?.dynamoDbCalls),
        small(f.perConnect?.dynamoDbCalls),
        small(r.per?.readUnits),
        small(r.per?.writeUnits),
        cpuColumn(r),
        dollars(r.cost?.serverless?.total),
        dollars(r.cost?.iotCore.total),
      ];
    });
  return table(
    [
      'scenario',
      'broker',
      'devices',
      'connects/s',
      'refused',
      'closed',
      'offered/s',
      'delivered/s',
      'p50 ms',
      'p99 ms',
      'missing',
      'acked lost',
      'dup',
      'reordered',
      'invocations',
      'DDB calls',
      'DDB/CONNECT',
      'RCU',
      'WCU',
      'CPU %',
      '$/M ours',
      '$/M IoT Core',
    ],
    rows,
  );
}

export function connectStormTable(results: readonly ScenarioResult[]): string {
  const rows = results
    .filter((r) => r.connectStorm || (r.error && r.scenario === 'connect-storm'))
    .flatMap((r) => {
      if (!r.connectStorm) return [[r.scenario, r.broker, `error: ${r.error}`, ...Array(11).fill('')]];
      return r.connectStorm.rounds.map((round) => [
        r.scenario,
        r.broker,
        count(round.parallel),
        `${count(round.connected)}/${count(round.devices)}`,
        rate(round.connected, round.connectMs),
        ms(round.connackMs.p50),
        ms(round.connackMs.p99),
        count(sum(round.refused) + sum(round.failed)),
        small(round.perConnect?.dynamoDbCalls),
        small(round.perConnect?.writeUnits),
        small(round.perConnect?.invocations),
        small(round.perDisconnect?.dynamoDbCalls),
        small(round.perDisconnect?.writeUnits),
        small(round.perDisconnect?.invocations),
      ]);
    });
  return table(
    ['scenario', 'broker', 'in flight', 'connected', 'connects/s', 'CONNACK p50 ms', 'p99 ms', 'refused', 'DDB/CONNECT', 'WCU', 'invocations', 'DDB/DISCONNECT', 'WCU', 'invocations'],
    rows,
  );
}

export function connackTable(results: readonly ScenarioResult[]): string {
  const rows = results
    .filter((r) => r.connack)
    .map((r) => {
      const { cold, warm } = r.connack!;
      return [r.scenario, r.broker, count(cold.samples), ms(cold.p50), ms(cold.p99), ms(cold.max), count(warm.samples), ms(warm.p50), ms(warm.p99), ms(warm.max)];
    });
  return table(['scenario', 'broker', 'cold starts', 'cold p50 ms', 'p99 ms', 'max ms', 'warm CONNECTs', 'warm p50 ms', 'p99 ms', 'max ms'], rows);
}

/** Refusals by code, other failures and the broker's closes, for the notes. */
function fleetNotes(result: ScenarioResult): string[] {
  const counts = (what: string, c: Readonly<Record<string, number>>): string[] =>
    sum(c) === 0 ? [] : [`${what}: ${Object.entries(c).map(([reason, k]) => `${k} × ${reason}`).join(', ')}`];
  const f = result.fleet;
  const rounds = result.connectStorm?.rounds ?? [];
  return [
    ...(f ? [...counts('CONNACK refused', f.refused), ...counts('connection failed', f.failed), ...counts('closed by the broker', f.closedByBroker)] : []),
    ...rounds.flatMap((r) => [...counts(`${r.parallel} in flight, CONNACK refused`, r.refused), ...counts(`${r.parallel} in flight, connection failed`, r.failed)]),
  ];
}

export function connectionsTable(results: readonly ScenarioResult[]): string {
  const rows = results
    .filter((r) => r.connections)
    .map((r) => {
      const c = r.connections!;
      return [
        r.scenario,
        r.broker,
        count(c.count),
        count((c.measured * 1000) / c.connectMs),
        kilobytes(c.rssBytesPerConnection),
        kilobytes(c.heapBytesPerConnection),
        count((c.pings * 1000) / c.pingMs),
        small(r.per?.dynamoDbCalls),
        small(r.per?.readUnits),
        small(r.per?.writeUnits),
        small(r.per?.invocations),
        dollars(r.cost?.serverless?.total),
        dollars(r.cost?.iotCore.total),
      ];
    });
  return table(
    ['scenario', 'broker', 'connections', 'connects/s', 'RSS/conn', 'heap/conn', 'pings/s', 'DDB calls', 'RCU', 'WCU', 'invocations', '$/M ours', '$/M IoT Core'],
    rows,
  );
}

export function renderReport(report: BenchReport): string {
  const { machine, deployment, results } = report;
  const l = deployment.listener;
  const notes = results.flatMap((r) =>
    [...(r.error ? [`error: ${r.error}`] : []), ...fleetNotes(r), ...r.notes].map((note) => `  ${r.scenario} (${r.broker}): ${note}`),
  );
  const hasMessages = results.some((r) => (r.messages && !r.fleet) || (r.error && !r.connections && !isFleet(r)));
  const hasFleet = results.some((r) => r.fleet || (r.error && r.scenario.startsWith('fleet')));
  const hasStorm = results.some((r) => r.connectStorm || (r.error && r.scenario === 'connect-storm'));
  const hasConnections = results.some((r) => r.connections);
  return [
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, Node ${machine.node}; load average ${machine.loadAverage.start.toFixed(2)} at start${
      machine.loadAverage.end === undefined ? '' : `, ${machine.loadAverage.end.toFixed(2)} at end`
    } (the broker, DynamoDB Local and the load generator share these cores with whatever else runs).`,
    '',
    ...(hasMessages
      ? [
          'Messages: sent = publishes (* the time limit ended the sending); missing = deliveries that never arrived; msg/s = deliveries',
          'per second; latency from publish to delivery (replay: from SUBSCRIBE); DDB calls, RCU, WCU and invocations per delivered',
          'message; CPU % of one core over the measured phase: broker / DynamoDB Local / load generator; $ per million delivered',
          'messages: ours through the door measured (NLB and listener, or API Gateway), AWS IoT Core (publish and each delivery billed).',
          '',
          messagesTable(results),
          '',
        ]
      : []),
    ...(hasFleet
      ? [
          'Fleets: devices connected of those tried; connects/s while the devices connected (--parallel handshakes in flight); refused =',
          'CONNACKs refused and connections failed (codes in the notes); closed = devices and subscribers the broker closed; offered/s =',
          'publishes per second the connected devices were scheduled to send; delivered/s = deliveries per second; missing = deliveries',
          'that never arrived; acked lost (QoS 1) = deliveries of PUBACKed publishes that never arrived, after the drain; invocations,',
          'DDB calls, RCU and WCU per delivered message, DDB/CONNECT per device CONNECT (its own phase); $ per million delivered,',
          'hourly costs spread over the fleet\'s offered deliveries/s (unless --rate), IoT Core = a publish and a delivery per message.',
          '',
          fleetTable(results),
          '',
        ]
      : []),
    ...(hasStorm
      ? [
          'Connect storm: each round connects every device (Clean Session, no will) with that many handshakes in flight, then disconnects',
          'them; connects/s over the connecting; CONNACK latency from opening the socket; DynamoDB calls, write units and invocations',
          'per CONNECT and per DISCONNECT (each counted once the broker finished the phase).',
          '',
          connectStormTable(results),
          '',
        ]
      : []),
    ...(results.some((r) => r.connack)
      ? [
          'CONNACK latency, from opening the socket, one client at a time (Clean Session): cold = the first CONNECT after a fresh start',
          'of the broker (the harness: its process and DynamoDB Local started anew, as `npm start` does), one per start; warm = later',
          'CONNECTs on the last start\'s broker, each with a new client id.',
          '',
          connackTable(results),
          '',
        ]
      : []),
    ...(hasConnections
      ? [
          'Connections: memory per connection from the broker\'s RSS and V8 heap before and after connecting (after a GC);',
          'DDB calls, RCU, WCU and invocations per keep-alive PINGREQ; $ per million connection-minutes.',
          '',
          connectionsTable(results),
          '',
        ]
      : []),
    `Cost model: AWS list prices (us-east-1, arm64). Lambda at ${deployment.lambdaMemoryMb} MB, billed per invocation for the smaller of the handler`,
    `wall time measured here (inflated by queueing in one local process under saturation) and a model (every DynamoDB call in turn`,
    `at ${deployment.dynamoDbLatencyMs} ms, plus all of the broker's CPU time). Hourly costs spread over ${whole.format(deployment.deliveriesPerSecond)} deliveries/s steady${
      hasFleet ? ' (fleets: their own rate, unless --rate)' : ''
    }; listener: at least`,
    `${l.minTasks} Fargate tasks of ${l.vcpuPerTask} vCPU / ${l.gbPerTask} GB, each vCPU assumed to relay ${whole.format(l.packetsPerVcpuSecond)} packets/s; NLB with TLS capacity units;`,
    `keep-alive every ${deployment.keepAliveSeconds} s. Line items per scenario are in the JSON.`,
    ...(notes.length > 0 ? ['', 'Notes:', ...notes] : []),
  ].join('\n');
}
