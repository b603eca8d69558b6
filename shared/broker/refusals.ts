/**
 * How a connection hears that its packets could not be handled: a protocol error, a handler that
 * failed, a store that cannot serve it now, a protocol version the broker does not speak. Each is
 * answered with actions, like any packet.
 */
import type { ProtocolVersion } from '../protocol/codec';
import { connectProtocolLevel } from '../protocol/fixed-header';
import { ConnackReturnCode, MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { close, closeWithReason, send, type Action } from './actions';
import type { BrokerDeps } from './context';
import { StoreUnavailableError, type ConnectionRecord } from './ports';

const CONNECT_TYPE = 1;

export interface Failed {
  readonly deps: BrokerDeps;
  readonly connectionId: string;
  readonly connection: ConnectionRecord | undefined;
  /** The version the door saw in the connection's CONNECT, when its record cannot be read. */
  readonly knownVersion?: ProtocolVersion | undefined;
}

/**
 * What went wrong, answered. `frame`: the packet that failed (a CONNECT is refused with CONNACK);
 * none for a run of packets, whose failure comes as it ends.
 */
export function answerFailure(failed: Failed, error: unknown, frame?: Buffer): Action[] {
  const { deps, connectionId, connection, knownVersion } = failed;
  if (!connection && frame) {
    const refusal = refuseUnsupportedVersion(deps, connectionId, frame);
    if (refusal) return refusal;
  }
  if (error instanceof StoreUnavailableError) return refuseForNow(deps, connectionId, frame, connection?.protocolVersion ?? knownVersion, error);
  return failConnection(deps, connectionId, connection, error);
}

/** A protocol error, or a handler that failed: closed, a 5.0 client hearing the reason code first. */
function failConnection(deps: BrokerDeps, connectionId: string, connection: ConnectionRecord | undefined, error: unknown): Action[] {
  const known = error instanceof MqttProtocolError;
  const reasonCode = known ? error.reasonCode : ReasonCode.UnspecifiedError;
  const fields = { connectionId, clientId: connection?.clientId, reasonCode, error: known ? error.message : String(error) };
  if (known) deps.log.warn('closing connection: protocol error', fields);
  else deps.log.error('closing connection: handler failed', fields);
  // Before CONNECT there is no version to speak; the connection just closes.
  // The protocol error's own words go to the client; an internal failure's never do.
  return [closeWithReason(connectionId, connection?.protocolVersion ?? 4, reasonCode, known ? error.message : undefined)];
}

/**
 * The store cannot serve this connection now. A CONNECT is refused with CONNACK 0x88 Server
 * unavailable or 0x89 Server busy (3.1.1: return code 3, Server unavailable), [MQTT-3.2.2-6] (5.0)
 * [MQTT-3.2.2-5] (3.1.1) then closed; anything else closes the connection, a 5.0 client hearing
 * DISCONNECT 0x89 Server busy first (0x88 is not a DISCONNECT reason code). Whatever the packet
 * was, it is not acknowledged: a QoS 1/2 PUBLISH is resent by the client when it reconnects ([MQTT-4.4.0-1]).
 */
export function refuseForNow(
  deps: BrokerDeps,
  connectionId: string,
  frame: Buffer | undefined,
  version: ProtocolVersion | undefined,
  error: StoreUnavailableError,
): Action[] {
  const reasonCode = error.kind === 'busy' ? ReasonCode.ServerBusy : ReasonCode.ServerUnavailable;
  const packetType = frame && frame.length > 0 ? frame[0]! >> 4 : undefined;
  deps.log.warn('refusing connection: store unavailable', { connectionId, reasonCode, packetType, error: error.message });
  if (frame && packetType === CONNECT_TYPE) {
    const connack =
      connectProtocolLevel(frame) === 5
        ? send(connectionId, 5, { cmd: 'connack', reasonCode, sessionPresent: false })
        : send(connectionId, 4, { cmd: 'connack', returnCode: ConnackReturnCode.ServerUnavailable, sessionPresent: false });
    return [connack, close(connectionId)];
  }
  // 0x88 is a CONNACK code only; a DISCONNECT says 0x89 Server busy (MQTT 5.0 3.14.2.1).
  return [closeWithReason(connectionId, version ?? 4, ReasonCode.ServerBusy, 'the server cannot store messages now; try again later')];
}

/**
 * [MQTT-3.1.2-2] a CONNECT of a protocol level the server does not support is answered with
 * CONNACK 0x01 (3.1.1) / 0x84 (5.0) and the connection closed. The client's version is unknown,
 * so the answer uses the 3.1.1 form, which every version can read.
 */
function refuseUnsupportedVersion(deps: BrokerDeps, connectionId: string, frame: Buffer): Action[] | undefined {
  const level = connectProtocolLevel(frame);
  if (level === undefined || level === 3 || level === 4 || level === 5) return undefined;
  deps.log.info('CONNECT refused: unsupported protocol level', { connectionId, level });
  return [send(connectionId, 4, { cmd: 'connack', returnCode: ConnackReturnCode.UnacceptableProtocolVersion, sessionPresent: false }), close(connectionId)];
}
