/**
 * The sweeper, scheduled every minute in the cloud. First, always, the timers: due wills and
 * expired sessions, a bounded number per run, never behind anything else. Then, one run at a time
 * (a lease), the connections whose close the broker never heard of. API Gateway's `$disconnect` is
 * best-effort, and a listener task can die with its sockets; either way the Connections table
 * keeps an item for a connection that no longer exists, and its session stays attached to it.
 *
 * What a run costs does not grow with the live connections:
 * - listener tasks register and heartbeat; each run asks each registered task once whether it
 *   answers (`probeTask`), and ends every connection of one that does not, found by task in the
 *   owner index, without asking after each;
 * - API Gateway's connections are probed (`GET @connections/{id}`) `browserProbes` a run, resuming
 *   where the last run stopped: a full pass over B browser connections takes B / browserProbes runs;
 * - the live tasks' connections are read (not probed) `deviceChecks` a run, likewise, for tokens
 *   that expired on clients that only ping (the listener answers pings without the broker).
 * A run starts no new work after `budgetMs`; what is left waits for the next run.
 */
import { randomUUID } from 'node:crypto';
import { forEachBounded } from '../util/concurrency';
import type { BrokerDeps } from './context';
import { handleConnectionClosed } from './connection-closed';
import type { ConnectionDirectory, ConnectionProbe, ListenerTask, SweepState } from './ports';
import { checkBrowser, checkDevice, endTaskConnections, PARALLEL_CHECKS, READ_PAGE, walkOwners, type SweepContext, type SweepCounts } from './sweep-connections';
import { LEASES } from './leases';
import { runDueTimers } from './will';

export interface SweeperOptions {
  /** API Gateway connections probed per run. */
  readonly browserProbes: number;
  /** Connections of live listener tasks read per run (no probe: for expired tokens). */
  readonly deviceChecks: number;
  /** Due wills, and expired sessions, per round of the timers; rounds repeat while full, within half the budget. */
  readonly timerBatch: number;
  /** No new work starts after this much of a run (the function's timeout is 60 s). */
  readonly budgetMs: number;
  /** How long a run holds the sweep against others: past the function's timeout, so a run cut off by it is not overlapped. */
  readonly leaseMs: number;
}

export const defaultSweeperOptions: SweeperOptions = {
  browserProbes: 1_000,
  deviceChecks: 5_000,
  timerBatch: 100,
  budgetMs: 40_000,
  leaseMs: LEASES.sweepMs,
};

export interface SweepResult extends SweepCounts {
  /** Wills published and sessions ended by the timers. */
  readonly wills: number;
  readonly sessions: number;
  /** Listener tasks that no longer answer (their connections ended by task). */
  readonly deadTasks: number;
  /** Another run held the sweep: only the timers ran. */
  readonly overlapped: boolean;
}

export interface SweeperDeps {
  readonly broker: BrokerDeps;
  readonly directory: ConnectionDirectory;
  readonly probe: ConnectionProbe;
  /** How a gone connection is ended; by default `handleConnectionClosed`. */
  readonly end?: (connectionId: string) => Promise<void>;
  readonly options?: Partial<SweeperOptions>;
}

export async function sweep(deps: SweeperDeps): Promise<SweepResult> {
  const options = { ...defaultSweeperOptions, ...deps.options };
  const { broker, directory } = deps;
  const started = broker.now();
  const timers = await runTimers(broker, options, started + options.budgetMs / 2);
  const counts: SweepCounts = { checked: 0, ended: 0, unknown: 0, expired: 0, idle: 0 };
  const holder = randomUUID();
  const state = await directory.claimSweep(holder, started, options.leaseMs);
  if (!state) {
    broker.log.info('sweeper: another run holds the sweep; timers only');
    return { ...counts, ...timers, deadTasks: 0, overlapped: true };
  }
  const context: SweepContext = {
    broker,
    directory,
    probe: deps.probe,
    end: deps.end ?? ((connectionId) => handleConnectionClosed(broker, connectionId)),
    deadline: started + options.budgetMs,
    counts,
  };
  let next: SweepState = state;
  let deadTasks = 0;
  try {
    const { live, dead } = await askTasks(context, await directory.listTasks());
    deadTasks = dead.length;
    for (const task of dead) {
      broker.log.info('sweeper: a listener task no longer answers; ending its connections', { endpoint: task.endpoint });
      if (await endTaskConnections(context, task.endpoint)) await directory.forgetTask(task.endpoint);
    }
    const browsers = await walkOwners(context, directory.browserOwners(), state.browsers, options.browserProbes, PARALLEL_CHECKS, (c) =>
      checkBrowser(context, c),
    );
    const deviceOwners = live.flatMap((task) => directory.taskOwners(task.endpoint));
    const devices = await walkOwners(context, deviceOwners, state.devices, options.deviceChecks, READ_PAGE, (c) => checkDevice(context, c));
    next = { ...(browsers ? { browsers } : {}), ...(devices ? { devices } : {}) };
  } finally {
    await directory.releaseSweep(holder, next);
  }
  return { ...counts, ...timers, deadTasks, overlapped: false };
}

/** Due wills and expired sessions: rounds of `timerBatch` while a round comes back full, until `until`. */
async function runTimers(broker: BrokerDeps, options: SweeperOptions, until: number): Promise<{ wills: number; sessions: number }> {
  const total = { wills: 0, sessions: 0 };
  for (;;) {
    const round = await runDueTimers(broker, options.timerBatch);
    total.wills += round.wills;
    total.sessions += round.sessions;
    if ((round.wills < options.timerBatch && round.sessions < options.timerBatch) || broker.now() >= until) return total;
  }
}

/** Each registered task asked once whether it answers at its delivery endpoint. */
async function askTasks(context: SweepContext, tasks: readonly ListenerTask[]): Promise<{ live: ListenerTask[]; dead: ListenerTask[] }> {
  const live: ListenerTask[] = [];
  const dead: ListenerTask[] = [];
  await forEachBounded(tasks, PARALLEL_CHECKS, async (task) => {
    try {
      ((await context.probe.probeTask(task.endpoint)) === 'alive' ? live : dead).push(task);
    } catch (error) {
      // Not asked at all (no delivery secret, say): that says nothing about the task.
      live.push(task);
      context.broker.log.warn('sweeper: could not ask a listener task', { endpoint: task.endpoint, error: String(error) });
    }
  });
  return { live, dead };
}
