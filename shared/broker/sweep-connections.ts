/**
 * The sweeper's work on connections, each piece bounded so a run's cost does not grow with the
 * number of live connections: a dead listener task's connections ended by task, and incremental
 * passes over the rest that resume, run after run, where the last stopped.
 */
import { ReasonCode } from '../protocol/reason-codes';
import { forEachBounded } from '../util/concurrency';
import { closeWithReason } from './actions';
import type { BrokerDeps } from './context';
import { Dispatcher } from './dispatcher';
import type { ConnectionDirectory, ConnectionProbe, OwnedConnection, SweepCursor } from './ports';

/** Connections checked or ended at once. */
export const PARALLEL_CHECKS = 16;
/** Connections read from the index at a time, where reading is all a connection costs. */
export const READ_PAGE = 100;

export interface SweepCounts {
  /** Connections looked at. */
  checked: number;
  /** Connections found gone and ended. */
  ended: number;
  /** Connections whose door could not be asked (tried again next time). */
  unknown: number;
  /** Connections closed because their token had expired. */
  expired: number;
  /** API Gateway connections closed for silence past 1.5 times their keep-alive. */
  idle: number;
}

export interface SweepContext {
  readonly broker: BrokerDeps;
  readonly directory: ConnectionDirectory;
  readonly probe: ConnectionProbe;
  readonly end: (connectionId: string) => Promise<void>;
  /** No new work starts after this (epoch ms, the broker's clock). */
  readonly deadline: number;
  readonly counts: SweepCounts;
}

/**
 * Visits up to `limit` connections of `owners` (in order), `pageSize` at a time (the deadline is
 * checked between pages: a page of probes is one wave of PARALLEL_CHECKS, so a run overruns its
 * budget by one probe's time at most), starting where `cursor` says; returns where to resume, or
 * undefined once the last owner is done (the next pass starts over).
 */
export async function walkOwners(
  sweep: SweepContext,
  owners: readonly string[],
  cursor: SweepCursor | undefined,
  limit: number,
  pageSize: number,
  visit: (connection: OwnedConnection) => Promise<void>,
): Promise<SweepCursor | undefined> {
  let budget = limit;
  for (const owner of [...owners].sort()) {
    if (cursor && owner < cursor.owner) continue;
    let after = cursor && owner === cursor.owner && cursor.after !== '' ? cursor.after : undefined;
    for (;;) {
      if (budget <= 0 || sweep.broker.now() >= sweep.deadline) return { owner, after: after ?? '' };
      const asked = Math.min(pageSize, budget);
      const page = await sweep.directory.owned(owner, after, asked);
      await forEachBounded(page, PARALLEL_CHECKS, visit);
      budget -= page.length;
      if (page.length < asked) break;
      after = page[page.length - 1]!.connectionId;
    }
  }
  return undefined;
}

/**
 * An API Gateway connection: closed if its token expired, or if its client has sent nothing for
 * 1.5 times its keep-alive (API Gateway's LastActiveAt; the door has no timer of its own), ended
 * if its door no longer knows it.
 */
export async function checkBrowser(sweep: SweepContext, connection: OwnedConnection): Promise<void> {
  sweep.counts.checked += 1;
  try {
    if (await closeIfTokenExpired(sweep, connection)) return;
    const { state, lastActiveAt } = await sweep.probe.probeActivity(connection.connectionId);
    if (state === 'connected') {
      if (silentTooLong(sweep, connection, lastActiveAt)) await closeSilent(sweep, connection);
      return;
    }
    sweep.broker.log.info('sweeper: connection gone without a close, ending it', { connectionId: connection.connectionId, clientId: connection.clientId });
    await sweep.end(connection.connectionId);
    sweep.counts.ended += 1;
  } catch (error) {
    sweep.counts.unknown += 1;
    sweep.broker.log.warn('sweeper: could not check a connection', { connectionId: connection.connectionId, error: String(error) });
  }
}

/**
 * A connection of a live listener task: its task reports its close, so only its token is looked
 * at (a client that only pings never reaches the handler, which checks it on every packet).
 */
export async function checkDevice(sweep: SweepContext, connection: OwnedConnection): Promise<void> {
  sweep.counts.checked += 1;
  try {
    await closeIfTokenExpired(sweep, connection);
  } catch (error) {
    sweep.counts.unknown += 1;
    sweep.broker.log.warn('sweeper: could not close a connection whose token expired', { connectionId: connection.connectionId, error: String(error) });
  }
}

/**
 * Ends the connections of a listener task that no longer answers, without asking after each:
 * every socket it held died with it. Returns whether none is left (the task may be forgotten);
 * what the deadline leaves is ended by the next run.
 */
export async function endTaskConnections(sweep: SweepContext, endpoint: string): Promise<boolean> {
  for (const owner of sweep.directory.taskOwners(endpoint)) {
    let after: string | undefined;
    for (;;) {
      if (sweep.broker.now() >= sweep.deadline) return false;
      const page = await sweep.directory.owned(owner, after, READ_PAGE);
      await forEachBounded(page, PARALLEL_CHECKS, async ({ connectionId, clientId }) => {
        sweep.counts.checked += 1;
        try {
          await sweep.end(connectionId);
          sweep.counts.ended += 1;
        } catch (error) {
          sweep.counts.unknown += 1;
          sweep.broker.log.warn('sweeper: could not end a connection of a dead task', { connectionId, clientId, error: String(error) });
        }
      });
      if (page.length < READ_PAGE) break;
      after = page[page.length - 1]!.connectionId;
    }
  }
  // The index lags the table a little: what it still lists now is looked at again next run.
  return (await Promise.all(sweep.directory.taskOwners(endpoint).map((owner) => sweep.directory.owned(owner, undefined, 1)))).every((p) => p.length === 0);
}

/** [MQTT-3.1.2-22] silent for more than 1.5 times its keep-alive (0: none asked for, none enforced). */
function silentTooLong(sweep: SweepContext, connection: OwnedConnection, lastActiveAt: number | undefined): boolean {
  const keepalive = connection.keepalive ?? 0;
  return keepalive > 0 && lastActiveAt !== undefined && sweep.broker.now() - lastActiveAt > keepalive * 1500;
}

/** 5.0: DISCONNECT 0x8D Keep alive timeout; its close then ends it (its will published) as any close does. */
async function closeSilent(sweep: SweepContext, connection: OwnedConnection): Promise<void> {
  sweep.broker.log.info('sweeper: closing a connection silent past its keep-alive', { connectionId: connection.connectionId, clientId: connection.clientId, keepalive: connection.keepalive });
  await closeTelling(sweep, connection, ReasonCode.KeepAliveTimeout, 'keep alive timeout', 'idle');
}

/**
 * A connection whose token has expired is told so (5.0 DISCONNECT 0xA0 Maximum connect time) and
 * closed; its close then ends it as any close does.
 */
async function closeIfTokenExpired(sweep: SweepContext, connection: OwnedConnection): Promise<boolean> {
  const { connectionId, clientId, tokenExpiresAt } = connection;
  if (tokenExpiresAt === undefined || tokenExpiresAt > sweep.broker.now()) return false;
  sweep.broker.log.info('sweeper: closing a connection whose token expired', { connectionId, clientId });
  await closeTelling(sweep, connection, ReasonCode.MaximumConnectTime, 'token expired', 'expired');
  return true;
}

/** Tells the client why (5.0 DISCONNECT) and closes it, counted under `counted`; found gone while closing: ended here. */
async function closeTelling(sweep: SweepContext, connection: OwnedConnection, reasonCode: number, reason: string, counted: 'idle' | 'expired'): Promise<void> {
  const { connectionId, protocolVersion } = connection;
  const dispatcher = new Dispatcher(sweep.broker);
  await dispatcher.perform([closeWithReason(connectionId, protocolVersion, reasonCode, reason)]);
  if ((await dispatcher.flush()).includes(connectionId)) {
    await sweep.end(connectionId);
    sweep.counts.ended += 1;
  } else sweep.counts[counted] += 1;
}
