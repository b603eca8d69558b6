/**
 * The listener could not frame a connection's byte stream: a Remaining Length of more than four
 * bytes ([MQTT-1.5.5-1], 0x81) or a packet over the Maximum Packet Size (0x95). The connection
 * closes; a 5.0 client that got its CONNACK learns why in a DISCONNECT first (MQTT 5.0, 4.13).
 */
import { closeWithReason } from './actions';
import type { BrokerDeps } from './context';
import { Dispatcher } from './dispatcher';

/** Returns the connections found gone, for the entry point to end. */
export async function handleStreamFailure(deps: BrokerDeps, connectionId: string, reasonCode: number, reason: string): Promise<string[]> {
  const connection = await deps.store.connections.getConnection(connectionId);
  deps.log.warn('closing connection: protocol error', { connectionId, clientId: connection?.clientId, reasonCode, error: reason });
  const dispatcher = new Dispatcher(deps);
  // No connection record: CONNECT was never accepted, so there is no version to speak; just close.
  await dispatcher.perform([closeWithReason(connectionId, connection?.protocolVersion ?? 4, reasonCode)]);
  return dispatcher.flush(connectionId);
}
