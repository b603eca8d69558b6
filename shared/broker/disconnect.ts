/**
 * DISCONNECT from a client, and the server closing a connection (with a 5.0 DISCONNECT that
 * carries the reason code: MQTT 5.0 section 4.13 asks for it before closing on a malformed packet
 * or protocol error).
 */
import { encodePacket, type DisconnectPacket, type ProtocolVersion } from '../protocol/codec';
import type { PacketContext } from './context';
import type { Outbox } from './outbox';

export function handleDisconnect(ctx: PacketContext, packet: DisconnectPacket): void {
  ctx.deps.log.info('client disconnected', {
    connectionId: ctx.connection.connectionId,
    clientId: ctx.connection.clientId,
    reasonCode: packet.reasonCode ?? 0,
  });
  // [MQTT-3.14.4-1] after DISCONNECT the client sends nothing more; the server closes the connection.
  ctx.outbox.close(ctx.connection.connectionId);
}

/** Close a connection; a 5.0 client first learns why. */
export function closeWithReason(outbox: Outbox, connectionId: string, version: ProtocolVersion, reasonCode: number): void {
  if (version === 5) outbox.send(connectionId, encodePacket({ cmd: 'disconnect', reasonCode }, 5));
  outbox.close(connectionId);
}
