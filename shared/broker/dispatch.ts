/**
 * The broker's entry: a batch of framed packets from one connection, handled in order.
 * The first packet must be CONNECT; each later one goes to the handler for its type.
 * A protocol error closes that one connection (5.0: DISCONNECT with the reason code first),
 * and the rest of the batch is dropped, as the connection is. When the store cannot serve the
 * batch (DynamoDB unreachable or throttling after the client's retries), the connection is refused
 * for now: a CONNECT gets CONNACK 0x88/0x89 (3.1.1: 3), any other packet a 5.0 DISCONNECT 0x89
 * (Server busy), and nothing the store did not keep is acknowledged.
 */
import { decodePacket, encodePacket, type Packet, type ProtocolVersion, type PubackPacket, type PubcompPacket } from '../protocol/codec';
import { connectProtocolLevel } from '../protocol/fixed-header';
import { ConnackReturnCode, MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { handleAuth } from './auth';
import { handleConnect } from './connect';
import { handleConnectionClosed } from './connection-closed';
import { newBatchState, type BrokerDeps, type PacketContext } from './context';
import { forEachBounded } from '../util/concurrency';
import { deliverSplit } from './fanout';
import { BatchLimits } from './limits';
import { closeWithReason, handleDisconnect } from './disconnect';
import { Outbox } from './outbox';
import { handlePingreq } from './pingreq';
import { handlePuback } from './puback';
import { handlePubcomp } from './pubcomp';
import { handlePublish } from './publish';
import { handlePubrec } from './pubrec';
import { handlePubrel } from './pubrel';
import { StoreUnavailableError, type ConnectionRecord } from './ports';
import { handleSubscribe } from './subscribe';
import { handleUnsubscribe } from './unsubscribe';

const PARALLEL_ACKS = 16;

/**
 * `knownVersion`: the protocol version the door saw in the connection's CONNECT, if it knows it;
 * used only to say goodbye properly when the connection's own record cannot be read.
 */
export async function handlePackets(
  deps: BrokerDeps,
  connectionId: string,
  frames: readonly Buffer[],
  knownVersion?: ProtocolVersion,
): Promise<void> {
  const outbox = new Outbox();
  let connection: ConnectionRecord | undefined;
  try {
    connection = await deps.store.connections.getConnection(connectionId);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError) || frames.length === 0) throw error;
    refuseForNow(deps, outbox, connectionId, frames[0]!, knownVersion, error);
    await outbox.flush(deps, connectionId);
    return;
  }
  let batch = newBatchState(connection);
  const limits = new BatchLimits(deps, frames);
  // Consecutive PUBLISHes deliver together when the run ends (one packet-id write per subscriber
  // for the run); their acknowledgements wait in the outbox, which is flushed only after.
  let runStart: number | undefined;
  const endPublishRun = async (): Promise<void> => {
    const deferred = batch.deferred.splice(0);
    const start = runStart;
    runStart = undefined;
    if (deferred.length === 0) return;
    try {
      await deliverSplit(deps, outbox, deferred);
    } catch (error) {
      // Not delivered, so not acknowledged: the client resends them.
      outbox.truncate(connectionId, start ?? 0);
      if (error instanceof StoreUnavailableError) refuseForNow(deps, outbox, connectionId, RUN_OF_PUBLISHES, connection?.protocolVersion ?? knownVersion, error);
      else failConnection(deps, outbox, connectionId, connection, error);
    }
  };
  // Consecutive PUBACKs and PUBCOMPs complete their deliveries concurrently: each is its own item.
  let acks: Array<PubackPacket | PubcompPacket> = [];
  const endAckRun = async (): Promise<void> => {
    const run = acks;
    acks = [];
    if (run.length === 0 || !connection) return;
    const ctx = { deps, connection, outbox, batch };
    await forEachBounded(run, PARALLEL_ACKS, (ack) => (ack.cmd === 'puback' ? handlePuback(ctx, ack) : handlePubcomp(ctx, ack)));
  };
  for (const [index, frame] of frames.entries()) {
    if (outbox.isClosing(connectionId)) break;
    try {
      // Packet size and publish rate (5.0: DISCONNECT 0x95 / 0x96)
      await limits.admit(connection, index);
      const packet = decodePacket(frame, connection?.protocolVersion ?? 4);
      // A QoS 2 PUBLISH ends the run (after it, in order): it is routed at once, see publish.ts.
      if (packet.cmd === 'publish' && packet.qos < 2) runStart ??= outbox.mark(connectionId);
      else await endPublishRun();
      if (connection && (packet.cmd === 'puback' || packet.cmd === 'pubcomp')) {
        acks.push(packet);
        continue;
      }
      await endAckRun();
      if (outbox.isClosing(connectionId)) break;
      if (!connection) {
        // [MQTT-3.1.0-1] the first packet from the client must be CONNECT; otherwise close, no CONNACK
        if (packet.cmd !== 'connect') throw new MqttProtocolError(ReasonCode.ProtocolError, `${packet.cmd} before CONNECT`);
        connection = await handleConnect(deps, connectionId, packet, outbox);
        batch = newBatchState(connection);
        continue;
      }
      await handlePacket({ deps, connection, outbox, batch }, packet);
    } catch (error) {
      // What was acknowledged before the error is still delivered.
      await endPublishRun();
      await endAckRun().catch((ackError: unknown) => deps.log.warn('acknowledgements not completed', { connectionId, error: String(ackError) }));
      if (outbox.isClosing(connectionId)) break;
      if (!connection && refuseUnsupportedVersion(deps, outbox, connectionId, frame)) break;
      if (error instanceof StoreUnavailableError) {
        refuseForNow(deps, outbox, connectionId, frame, connection?.protocolVersion ?? knownVersion, error);
        break;
      }
      failConnection(deps, outbox, connectionId, connection, error);
    }
  }
  await endPublishRun();
  try {
    await endAckRun();
  } catch (error) {
    failConnection(deps, outbox, connectionId, connection, error);
  }
  const gone = await outbox.flush(deps, connectionId);
  await Promise.all(gone.map((id) => handleConnectionClosed(deps, id)));
}

async function handlePacket(ctx: PacketContext, packet: Packet): Promise<void> {
  switch (packet.cmd) {
    case 'publish':
      return handlePublish(ctx, packet);
    case 'puback':
      return handlePuback(ctx, packet);
    case 'pubrec':
      return handlePubrec(ctx, packet);
    case 'pubrel':
      return handlePubrel(ctx, packet);
    case 'pubcomp':
      return handlePubcomp(ctx, packet);
    case 'subscribe':
      return handleSubscribe(ctx, packet);
    case 'unsubscribe':
      return handleUnsubscribe(ctx, packet);
    case 'pingreq':
      return handlePingreq(ctx);
    case 'disconnect':
      return handleDisconnect(ctx, packet);
    case 'auth':
      return handleAuth(ctx, packet);
    case 'connect':
      // [MQTT-3.1.0-2] a second CONNECT is a protocol error
      throw new MqttProtocolError(ReasonCode.ProtocolError, 'second CONNECT');
    case 'connack':
    case 'suback':
    case 'unsuback':
    case 'pingresp':
      throw new MqttProtocolError(ReasonCode.ProtocolError, `${packet.cmd} is sent only by servers`);
    default:
      return assertNever(packet);
  }
}

function failConnection(
  deps: BrokerDeps,
  outbox: Outbox,
  connectionId: string,
  connection: ConnectionRecord | undefined,
  error: unknown,
): void {
  const known = error instanceof MqttProtocolError;
  const reasonCode = known ? error.reasonCode : ReasonCode.UnspecifiedError;
  const fields = { connectionId, clientId: connection?.clientId, reasonCode, error: known ? error.message : String(error) };
  if (known) deps.log.warn('closing connection: protocol error', fields);
  else deps.log.error('closing connection: handler failed', fields);
  // Closing already (a failed delivery closed it): it says goodbye once.
  if (outbox.isClosing(connectionId)) return;
  // Before CONNECT there is no version to speak; the connection just closes.
  // The protocol error's own words go to the client; an internal failure's never do.
  closeWithReason(outbox, connectionId, connection?.protocolVersion ?? 4, reasonCode, known ? error.message : undefined);
}

/**
 * The store cannot serve this connection now. A CONNECT is refused with CONNACK 0x88 Server
 * unavailable or 0x89 Server busy (3.1.1: return code 3, Server unavailable), [MQTT-3.2.2-6] (5.0)
 * [MQTT-3.2.2-5] (3.1.1) then closed; anything else closes the connection, a 5.0 client hearing
 * DISCONNECT 0x89 Server busy first (0x88 is not a DISCONNECT reason code). Whatever the packet was, it is not acknowledged: a
 * QoS 1/2 PUBLISH is resent by the client when it reconnects ([MQTT-4.4.0-1]).
 */
function refuseForNow(
  deps: BrokerDeps,
  outbox: Outbox,
  connectionId: string,
  frame: Buffer,
  version: ProtocolVersion | undefined,
  error: StoreUnavailableError,
): void {
  const reasonCode = error.kind === 'busy' ? ReasonCode.ServerBusy : ReasonCode.ServerUnavailable;
  const isConnect = frame.length > 0 && frame[0]! >> 4 === CONNECT_TYPE;
  deps.log.warn('refusing connection: store unavailable', { connectionId, reasonCode, packetType: frame[0]! >> 4, error: error.message });
  if (isConnect) {
    const level = connectProtocolLevel(frame) === 5 ? 5 : 4;
    const connack =
      level === 5
        ? encodePacket({ cmd: 'connack', reasonCode, sessionPresent: false }, 5)
        : encodePacket({ cmd: 'connack', returnCode: ConnackReturnCode.ServerUnavailable, sessionPresent: false }, 4);
    outbox.send(connectionId, connack);
    outbox.close(connectionId);
    return;
  }
  // 0x88 is a CONNACK code only; a DISCONNECT says 0x89 Server busy (MQTT 5.0 3.14.2.1).
  closeWithReason(outbox, connectionId, version ?? 4, ReasonCode.ServerBusy, 'the server cannot store messages now; try again later');
}

const CONNECT_TYPE = 1;
/** Stands for the packet being refused when it is a run of PUBLISHes (any non-CONNECT first byte). */
const RUN_OF_PUBLISHES = Buffer.from([0x30]);

/**
 * [MQTT-3.1.2-2] a CONNECT of a protocol level the server does not support is answered with
 * CONNACK 0x01 (3.1.1) / 0x84 (5.0) and the connection closed. The client's version is unknown,
 * so the answer uses the 3.1.1 form, which every version can read.
 */
function refuseUnsupportedVersion(deps: BrokerDeps, outbox: Outbox, connectionId: string, frame: Buffer): boolean {
  const level = connectProtocolLevel(frame);
  if (level === undefined || level === 3 || level === 4 || level === 5) return false;
  deps.log.info('CONNECT refused: unsupported protocol level', { connectionId, level });
  outbox.send(connectionId, encodePacket({ cmd: 'connack', returnCode: ConnackReturnCode.UnacceptableProtocolVersion, sessionPresent: false }, 4));
  outbox.close(connectionId);
  return true;
}

function assertNever(packet: never): never {
  throw new MqttProtocolError(ReasonCode.ProtocolError, `unexpected packet ${(packet as Packet).cmd}`);
}
