/**
 * The end of a network connection: forget it, end its session unless the session outlives the
 * connection, and settle its will. Taking the connection's record is the claim: when an end is
 * reported twice (a DISCONNECT, the door's close, a handler that found the connection gone),
 * only the first caller acts.
 */
import type { BrokerDeps } from './context';
import type { ConnectionRecord } from './ports';
import { settleWill } from './will';

/** The network connection is gone (closed by either side, or found gone on delivery). */
export async function handleConnectionClosed(deps: BrokerDeps, connectionId: string): Promise<void> {
  const connection = await deps.store.takeConnection(connectionId);
  if (connection) await endConnection(deps, connection);
}

/**
 * End a connection whose record the caller has taken, as it stands now: a DISCONNECT may have
 * changed its Session Expiry Interval and dropped its will.
 */
export async function endConnection(deps: BrokerDeps, connection: ConnectionRecord): Promise<void> {
  const { connectionId, clientId, sessionExpiryInterval } = connection;
  const closed = await deps.store.closeSession(clientId, connectionId, sessionExpiryInterval === 0, sessionExpiryInterval);
  deps.log.info('connection closed', { connectionId, clientId, session: closed });
  await settleWill(deps, connection, closed);
}
