/** DISCONNECT from a client: the connection ends as its DISCONNECT says, then the server closes it. */
import type { DisconnectPacket } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { close } from './actions';
import { endConnection } from './connection-closed';
import { afterConnect } from './context';
import { LEASES } from './leases';

export const handleDisconnect = afterConnect<DisconnectPacket>(async (ctx, packet) => {
  const reasonCode = packet.reasonCode ?? 0;
  const asked = packet.properties?.sessionExpiryInterval;
  const expiry = asked === undefined ? undefined : Math.min(asked, ctx.deps.config.maxSessionExpiry);
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
  return [close(ctx.connection.connectionId)];
});
