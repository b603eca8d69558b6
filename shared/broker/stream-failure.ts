/**
 * The listener could not frame a connection's byte stream: a Remaining Length of more than four
 * bytes ([MQTT-1.5.5-1], 0x81) or a packet over the Maximum Packet Size (0x95). The connection
 * closes; a 5.0 client that got its CONNACK learns why in a DISCONNECT first (MQTT 5.0, 4.13).
 */
import type { BrokerDeps } from './context';
import { closeWithReason } from './disconnect';
import { handleConnectionClosed } from './connection-closed';
import { Outbox } from './outbox';

export async function handleStreamFailure(deps: BrokerDeps, connectionId: string, reasonCode: number, reason: string): Promise<void> {
  const connection = await deps.store.connections.getConnection(connectionId);
  deps.log.warn('closing connection: protocol error', { connectionId, clientId: connection?.clientId, reasonCode, error: reason });
  const outbox = new Outbox();
  // No connection record: CONNECT was never accepted, so there is no version to speak; just close.
  closeWithReason(outbox, connectionId, connection?.protocolVersion ?? 4, reasonCode);
  const gone = await outbox.flush(deps, connectionId);
  await Promise.all(gone.map((id) => handleConnectionClosed(deps, id)));
}
