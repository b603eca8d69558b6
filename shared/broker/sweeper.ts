/**
 * The sweeper: ends connections whose close the broker never heard of. API Gateway's
 * `$disconnect` is best-effort, and a listener task can die with its sockets; either way the
 * Connections table keeps an item for a connection that no longer exists, and its session
 * stays attached to it. Scheduled (every minute in the cloud), it asks each connection's door
 * whether the connection still exists (`GET @connections/{id}`) and ends those that do not,
 * through the same path as a close (`handleConnectionClosed`). A connection whose token has
 * expired is told so (5.0 DISCONNECT 0xA0 Maximum connect time) and closed, also one that only
 * pings (the listener answers pings without the broker); its close then ends it as any close does.
 */
import { ReasonCode } from '../protocol/reason-codes';
import { forEachBounded } from '../util/concurrency';
import { closeWithReason } from './actions';
import { Dispatcher } from './dispatcher';
import type { BrokerDeps } from './context';
import { handleConnectionClosed } from './connection-closed';
import type { ConnectionDirectory, ConnectionProbe } from './ports';

const PARALLEL_PROBES = 16;

export interface SweepResult {
  /** Connections looked at. */
  readonly checked: number;
  /** Connections found gone and ended. */
  readonly ended: number;
  /** Connections whose door could not be asked (tried again next time). */
  readonly unknown: number;
  /** Connections closed because their token had expired. */
  readonly expired: number;
}

export interface SweeperDeps {
  readonly broker: BrokerDeps;
  readonly directory: ConnectionDirectory;
  readonly probe: ConnectionProbe;
  /** How a gone connection is ended; by default `handleConnectionClosed`. */
  readonly end?: (connectionId: string) => Promise<void>;
}

export async function sweepConnections(deps: SweeperDeps): Promise<SweepResult> {
  const { log } = deps.broker;
  const end = deps.end ?? ((connectionId: string) => handleConnectionClosed(deps.broker, connectionId));
  let checked = 0;
  let ended = 0;
  let unknown = 0;
  let expired = 0;
  for await (const page of deps.directory.scanConnections()) {
    checked += page.length;
    await forEachBounded(page, PARALLEL_PROBES, async ({ connectionId, clientId, protocolVersion, tokenExpiresAt }) => {
      try {
        if (tokenExpiresAt !== undefined && tokenExpiresAt <= deps.broker.now()) {
          log.info('sweeper: closing a connection whose token expired', { connectionId, clientId });
          const dispatcher = new Dispatcher(deps.broker);
          await dispatcher.perform([closeWithReason(connectionId, protocolVersion, ReasonCode.MaximumConnectTime, 'token expired')]);
          // Found gone while closing: ended as a gone connection is.
          if ((await dispatcher.flush()).includes(connectionId)) {
            await end(connectionId);
            ended += 1;
          } else expired += 1;
          return;
        }
        if ((await deps.probe.probe(connectionId)) === 'connected') return;
        log.info('sweeper: connection gone without a close, ending it', { connectionId, clientId });
        await end(connectionId);
        ended += 1;
      } catch (error) {
        unknown += 1;
        log.warn('sweeper: could not check a connection', { connectionId, error: String(error) });
      }
    });
  }
  return { checked, ended, unknown, expired };
}
