/**
 * The end of a network connection: detach (or end) its session, settle its will, then forget the
 * connection. Claiming the connection's end is the lock: when an end is reported twice (a
 * DISCONNECT, the door's close, a handler that found the connection gone), only the first caller
 * acts; the record goes only once all of it is done, so a caller that dies half way leaves it for
 * the next report or the sweeper, which redo it once the claim's lease has passed.
 */
import type { BrokerDeps } from './context';
import { LEASES } from './leases';
import type { ConnectionRecord } from './ports';
import { settleWill } from './will';

/** The network connection is gone (closed by either side, or found gone on delivery). */
export async function handleConnectionClosed(deps: BrokerDeps, connectionId: string): Promise<void> {
  const connection = await deps.store.connections.claimConnectionEnd(connectionId, LEASES.connectionEndMs);
  if (connection) await endConnection(deps, connection);
}

/** End a connection whose end the caller has claimed, as it stands now: a DISCONNECT may have changed its Session Expiry Interval and dropped its will. */
export async function endConnection(deps: BrokerDeps, connection: ConnectionRecord): Promise<void> {
  const { connectionId, clientId, sessionExpiryInterval } = connection;
  // Counted by the one caller that claimed the end, once per connection.
  deps.stats?.count('disconnects');
  // Without a will there is nothing left to do after the session: the record goes with it (in one write when it can).
  const forgetConnection = connection.will === undefined;
  const closed = await deps.store.sessions.closeSession(clientId, connectionId, sessionExpiryInterval === 0, sessionExpiryInterval, { forgetConnection });
  deps.log.info('connection closed', { connectionId, clientId, session: closed });
  if (forgetConnection) return;
  await settleWill(deps, connection, closed);
  await deps.store.connections.deleteConnection(connectionId);
}
