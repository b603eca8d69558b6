/**
 * DISCONNECT from a client, and the server closing a connection (with a 5.0 DISCONNECT that
 * carries the reason code: MQTT 5.0 section 4.13 asks for it before closing on a malformed packet
 * or protocol error).
 */
import { encodePacket, type DisconnectPacket, type ProtocolVersion } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { endConnection } from './connection-closed';
import type { PacketContext } from './context';
import { LEASES } from './leases';
import type { Outbox } from './outbox';

export async function handleDisconnect(ctx: PacketContext, packet: DisconnectPacket): Promise<void> {
  const reasonCode = packet.reasonCode ?? 0;
  const expiry = packet.properties?.sessionExpiryInterval;
  // MQTT 5.0 3.14.2.2.2: a session that was to end with the connection cannot be given an expiry now
  if (expiry !== undefined && expiry !== 0 && ctx.connection.sessionExpiryInterval === 0) {
    throw new MqttProtocolError(ReasonCode.ProtocolError, 'Session Expiry Interval set on DISCONNECT after 0 on CONNECT');
  }
  ctx.deps.log.info('client disconnected', {
    connectionId: ctx.connection.connectionId,
    clientId: ctx.connection.clientId,
    reasonCode,
  });
  // The connection ends here, not when its socket closes: by the time the broker closes the
  // connection, the session is detached (or ended) and the will dropped (or published), so a
  // client that connects again right after finds the session as its DISCONNECT left it.
  // The changes are written with the claim, so an end redone after a crash makes them too.
  const claimed = await ctx.deps.store.connections.claimConnectionEnd(ctx.connection.connectionId, LEASES.connectionEndMs, {
    ...(expiry !== undefined ? { sessionExpiryInterval: expiry } : {}),
    // [MQTT-3.1.2-10] a normal DISCONNECT discards the will; 5.0 reason 0x04 keeps it
    dropWill: reasonCode !== ReasonCode.DisconnectWithWill,
  });
  if (claimed) await endConnection(ctx.deps, claimed);
  // [MQTT-3.14.4-1] after DISCONNECT the client sends nothing more; the server closes the connection.
  ctx.outbox.close(ctx.connection.connectionId);
}

/** Close a connection; a 5.0 client first learns why (a Reason String may say more, MQTT 5.0 3.14.2.2.3). */
export function closeWithReason(outbox: Outbox, connectionId: string, version: ProtocolVersion, reasonCode: number, reasonString?: string): void {
  if (version === 5) {
    outbox.send(connectionId, encodePacket({ cmd: 'disconnect', reasonCode, ...(reasonString ? { properties: { reasonString } } : {}) }, 5));
  }
  outbox.close(connectionId);
}
