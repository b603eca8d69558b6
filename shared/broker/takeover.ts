/**
 * Closing the connection a CONNECT took the session from ([MQTT-3.1.4-2]; 5.0: DISCONNECT 0x8E
 * Session taken over first, [MQTT-3.1.4-3]) without a DISCONNECT ahead of that connection's own
 * CONNACK ([MQTT-3.14.0-1]). Two CONNECTs with one client id at the same moment are handled by
 * two invocations, and the winner's DISCONNECT could overtake the loser's CONNACK, still on its
 * way from the loser's invocation:
 *
 * - The listener holds such a DISCONNECT until the CONNACK (shared/listener/client-connection.ts).
 * - On API Gateway's door, the winner marks the loser's inbox lease (one conditional write),
 *   which succeeds only while the loser's first message, its CONNECT, is being handled. Then the
 *   loser's invocation, letting go of the lease after its CONNACK went out, reads the mark and
 *   closes its own connection (sequencer.ts). Otherwise the winner closes it, as before. DynamoDB
 *   orders the mark and the letting go, so exactly one of the two closes it, after the CONNACK.
 */
import { encodePacket, type ProtocolVersion } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { closeWithReason, type Close } from './actions';
import type { BrokerDeps } from './context';

/** The close of a taken-over connection, or undefined when that connection's own invocation closes it. */
export async function takeOver(deps: BrokerDeps, connectionId: string, version: ProtocolVersion): Promise<Close | undefined> {
  const close = closeWithReason(connectionId, version, ReasonCode.SessionTakenOver);
  if (!deps.inbox || deps.doors.holdsDisconnectUntilConnack(connectionId)) return close;
  try {
    return (await deps.inbox.markTakenOver(connectionId, version)) ? undefined : close;
  } catch (error) {
    // Closed all the same: better a DISCONNECT that may come early than a connection left open.
    deps.log.warn('takeover mark failed; closing the connection taken over at once', { connectionId, error: String(error) });
    return close;
  }
}

/** A connection told (by its inbox) that it was taken over while its CONNECT was handled: closed now, its CONNACK out. */
export async function closeAfterTakeover(deps: Pick<BrokerDeps, 'gateway'>, connectionId: string, version: ProtocolVersion, connackSent = true): Promise<void> {
  if (version === 5 && connackSent) await deps.gateway.send(connectionId, encodePacket({ cmd: 'disconnect', reasonCode: ReasonCode.SessionTakenOver }, 5));
  await deps.gateway.close(connectionId);
}
