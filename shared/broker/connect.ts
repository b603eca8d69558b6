/**
 * CONNECT: validate, pick the client identifier, open (or take over) the session, remember the
 * connection, answer CONNACK. Steps, in order:
 *   checkProtocol -> chooseClientId -> openSession -> closeTakenOverConnection -> rememberConnection -> connack
 */
import { randomUUID } from 'node:crypto';
import { encodePacket, type ConnectPacket, type ProtocolVersion } from '../protocol/codec';
import { connackReturnCodeFor, MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { checkTopicName } from '../protocol/topic';
import { inboundPacketLimit } from '../gateway/door-limits';
import type { BrokerDeps } from './context';
import { closeWithReason } from './disconnect';
import type { Outbox } from './outbox';
import type { ConnectionRecord, WillMessage } from './ports';

/** 5.0 default when the client sends no Session Expiry Interval: the session ends with the connection. */
const NO_EXPIRY = 0xffffffff;

export async function handleConnect(
  deps: BrokerDeps,
  connectionId: string,
  packet: ConnectPacket,
  outbox: Outbox,
): Promise<ConnectionRecord | undefined> {
  const protocolVersion = (packet.protocolVersion ?? 4) as ProtocolVersion;
  const cleanStart = packet.clean ?? true;
  const refuse = (reasonCode: number, why: string): undefined => {
    deps.log.info('CONNECT refused', { connectionId, clientId: packet.clientId, reasonCode, why });
    outbox.send(connectionId, connack(protocolVersion, reasonCode, false));
    outbox.close(connectionId);
    return undefined;
  };

  const clientId = chooseClientId(packet, protocolVersion, cleanStart);
  // [MQTT-3.1.3-8] (3.1.1) an empty client id with clean session 0 is rejected with 0x02
  if (clientId === undefined) return refuse(ReasonCode.ClientIdentifierNotValid, 'empty client id needs clean start');
  const willTopic = packet.will ? checkTopicName(packet.will.topic) : { ok: true as const };
  if (!willTopic.ok) {
    // The will topic is a topic name like any other; 3.1.1 has no CONNACK code for it, so it just closes.
    if (protocolVersion === 5) return refuse(ReasonCode.TopicNameInvalid, `will ${willTopic.reason}`);
    throw new MqttProtocolError(ReasonCode.TopicNameInvalid, `will ${willTopic.reason}`);
  }

  const { sessionPresent, previousConnectionId, previousProtocolVersion } = await deps.store.openSession({
    clientId,
    connectionId,
    protocolVersion,
    cleanStart,
    ...(packet.properties?.maximumPacketSize !== undefined ? { maximumPacketSize: packet.properties.maximumPacketSize } : {}),
  });
  // [MQTT-3.1.4-2] a second connection with the same client id closes the existing one
  if (previousConnectionId && previousConnectionId !== connectionId) {
    // 5.0: DISCONNECT 0x8E Session taken over [MQTT-3.1.4-3]
    closeWithReason(outbox, previousConnectionId, previousProtocolVersion ?? 4, ReasonCode.SessionTakenOver);
  }

  const connection: ConnectionRecord = {
    connectionId,
    clientId,
    protocolVersion,
    keepalive: packet.keepalive ?? 0,
    cleanStart,
    sessionExpiryInterval: sessionExpiryOf(packet, protocolVersion, cleanStart),
    connectedAt: deps.now(),
    ...(packet.will ? { will: willOf(packet.will) } : {}),
  };
  await deps.store.putConnection(connection);

  const assigned = clientId !== packet.clientId ? clientId : undefined;
  outbox.send(connectionId, connack(protocolVersion, ReasonCode.Success, sessionPresent, deps, assigned, inboundPacketLimit(connectionId, deps.config.maximumPacketSize)));
  deps.log.info('connected', { connectionId, clientId, protocolVersion, cleanStart, sessionPresent });
  return connection;
}

function chooseClientId(packet: ConnectPacket, version: ProtocolVersion, cleanStart: boolean): string | undefined {
  if (packet.clientId.length > 0) return packet.clientId;
  // [MQTT-3.1.3-6] (3.1.1) / [MQTT-3.1.3-6] (5.0): the server may assign an id to a client that sent none
  if (version === 5 || (version === 4 && cleanStart)) return `auto-${randomUUID()}`;
  return undefined;
}

function sessionExpiryOf(packet: ConnectPacket, version: ProtocolVersion, cleanStart: boolean): number {
  // 3.1.1: Clean Session 0 keeps the session with no time limit; 1 ends it with the connection.
  if (version !== 5) return cleanStart ? 0 : NO_EXPIRY;
  // [MQTT-3.1.2-11]: absent means 0, the session ends when the network connection closes
  return packet.properties?.sessionExpiryInterval ?? 0;
}

function willOf(will: NonNullable<ConnectPacket['will']>): WillMessage {
  return {
    topic: will.topic,
    payload: Buffer.isBuffer(will.payload) ? will.payload : Buffer.from(will.payload),
    qos: will.qos ?? 0,
    retain: will.retain ?? false,
  };
}

function connack(
  version: ProtocolVersion,
  reasonCode: number,
  sessionPresent: boolean,
  deps?: BrokerDeps,
  assignedClientIdentifier?: string,
  maximumPacketSize?: number,
): Buffer {
  if (version !== 5) {
    // [MQTT-3.2.2-4] (3.1.1) session present is 0 when the connection is refused
    return encodePacket(
      { cmd: 'connack', returnCode: connackReturnCodeFor(reasonCode), sessionPresent: reasonCode === 0 && sessionPresent },
      version,
    );
  }
  return encodePacket(
    {
      cmd: 'connack',
      reasonCode,
      sessionPresent: reasonCode === 0 && sessionPresent,
      ...(reasonCode === 0 && deps
        ? {
            properties: {
              // [MQTT-3.2.2-16] the id the server chose for a client that sent an empty one
              ...(assignedClientIdentifier ? { assignedClientIdentifier } : {}),
              maximumPacketSize: maximumPacketSize ?? deps.config.maximumPacketSize,
              // Not yet offered; each lands with the complete-MQTT work, and 5.0 clients are told so.
              retainAvailable: false,
              sharedSubscriptionAvailable: false,
              subscriptionIdentifiersAvailable: false,
              wildcardSubscriptionAvailable: true,
            },
          }
        : {}),
    },
    5,
  );
}
