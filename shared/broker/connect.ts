/**
 * CONNECT: validate, pick the client identifier, admit (authenticate, authorize the will, limits),
 * open (or take over) the session, remember the connection, answer CONNACK, then give a resumed
 * session what it is owed. Steps, in order:
 *   chooseClientId -> checkWill -> admitConnection -> openSession -> closeTakenOverConnection
 *     -> settlePendingWill -> rememberConnection -> connack -> resendInFlight -> drainQueue (sends, then releases the claim's hold)
 */
import { randomUUID } from 'node:crypto';
import { encodePacket, type ConnectPacket, type ProtocolVersion } from '../protocol/codec';
import { connackReturnCodeFor, MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { checkTopicName } from '../protocol/topic';
import { admitConnection } from './admission';
import { selfRecipient, type BrokerDeps } from './context';
import { drainQueue, resendInFlight } from './deliver';
import { serverKeepAlive } from './keep-alive';
import { closeWithReason } from './disconnect';
import type { Outbox } from './outbox';
import { connectHold, StoreUnavailableError, type ConnectionRecord, type MessageProperties, type Recipient, type WillMessage } from './ports';
import { publishWill } from './will';

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
    outbox.send(connectionId, connack(protocolVersion, reasonCode, false, undefined, why));
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

  const limits = clientLimits(packet, protocolVersion);
  // [MQTT-3.1.4-2] (5.0) authentication and authorization checks; a failure refuses with CONNACK and closes
  const admission = await admitConnection(deps, connectionId, packet, clientId);
  if (!admission.ok) return refuse(admission.reasonCode, admission.why);

  const sessionExpiryInterval = sessionExpiryOf(packet, protocolVersion, cleanStart);
  const { sessionPresent, previousConnectionId, previousProtocolVersion, earlierTakenOver, endedSessionWill } = await deps.store.sessions.openSession({
    clientId,
    connectionId,
    protocolVersion,
    cleanStart,
    endsWithConnection: sessionExpiryInterval === 0,
    receiveMaximum: limits.receiveMaximum,
    topicAliasMaximum: limits.topicAliasMaximum,
    ...(limits.maximumPacketSize !== undefined ? { maximumPacketSize: limits.maximumPacketSize } : {}),
  });
  // [MQTT-3.1.4-2] a second connection with the same client id closes the existing one
  if (previousConnectionId && previousConnectionId !== connectionId) {
    // 5.0: DISCONNECT 0x8E Session taken over [MQTT-3.1.4-3]
    closeWithReason(outbox, previousConnectionId, previousProtocolVersion ?? 4, ReasonCode.SessionTakenOver);
  }
  // A takeover whose CONNECT died before closing the connection it took the session from.
  if (earlierTakenOver && earlierTakenOver.connectionId !== connectionId && earlierTakenOver.connectionId !== previousConnectionId) {
    closeWithReason(outbox, earlierTakenOver.connectionId, earlierTakenOver.protocolVersion, ReasonCode.SessionTakenOver);
  }
  // A delayed will of the previous connection: a resumed session cancels it [MQTT-3.1.3-9]; a
  // clean start ended that session, and a will is published when its session ends.
  if (endedSessionWill) await publishWill(deps, clientId, endedSessionWill, `ended#${connectionId}`);
  else if (sessionPresent) await deps.store.wills.cancelWill(clientId);

  const keepAlive = negotiateKeepAlive(deps, connectionId, protocolVersion, packet.keepalive ?? 0);
  const connection: ConnectionRecord = {
    connectionId,
    clientId,
    protocolVersion,
    keepalive: keepAlive.effective,
    cleanStart,
    sessionExpiryInterval,
    connectedAt: deps.now(),
    ...(packet.will ? { will: willOf(packet.will, protocolVersion) } : {}),
    ...limits,
    ...(protocolVersion === 5 ? { requestProblemInformation: packet.properties?.requestProblemInformation !== false } : {}),
    ...admission.identity,
  };
  await deps.store.connections.putConnection(connection);

  const assigned = clientId !== packet.clientId ? clientId : undefined;
  outbox.send(
    connectionId,
    connack(protocolVersion, ReasonCode.Success, sessionPresent, {
      deps,
      // what the client's door carries (the API Gateway door: one 32 KB frame)
      maximumPacketSize: deps.doors.inboundPacketLimit(connectionId, deps.config.maximumPacketSize),
      assignedClientIdentifier: assigned,
      serverKeepAlive: keepAlive.server,
      responseInformation: packet.properties?.requestResponseInformation ? `response/${clientId}` : undefined,
    }),
  );
  deps.log.info('connected', { connectionId, clientId, protocolVersion, cleanStart, sessionPresent, username: connection.username });
  try {
    await resume(deps, outbox, selfRecipient(connection), sessionPresent);
  } catch (error) {
    // CONNACK may be out already: the connection was accepted, so it closes as an accepted one does.
    // Nothing is lost: what was in flight or queued stays so, for the client's next CONNECT.
    const busy = error instanceof StoreUnavailableError;
    deps.log.warn('closing connection: resuming the session failed', { connectionId, clientId, error: String(error) });
    if (!outbox.isClosing(connectionId)) closeWithReason(outbox, connectionId, protocolVersion, busy ? ReasonCode.ServerBusy : ReasonCode.UnspecifiedError);
  }
  return connection;
}

/**
 * From the session's claim until here, deliveries to this connection were held back (queued):
 * the client hears CONNACK first [MQTT-3.2.0-1], then what was in flight again, in order
 * [MQTT-4.4.0-1], then the queue, all sent before the claim's hold is released (drainQueue), so no
 * new message overtakes them.
 */
async function resume(deps: BrokerDeps, outbox: Outbox, recipient: Recipient, sessionPresent: boolean): Promise<void> {
  if (sessionPresent) await resendInFlight(deps, outbox, recipient);
  await drainQueue(deps, outbox, recipient, connectHold(recipient.connectionId!));
}

/** What the client accepts from the broker (5.0 CONNECT properties; 3.1.1 has no limits to tell). */
function clientLimits(packet: ConnectPacket, version: ProtocolVersion) {
  if (version !== 5) return { receiveMaximum: 65535, topicAliasMaximum: 0 };
  const properties = packet.properties ?? {};
  // MQTT 5.0 section 3.1.2.11: a Receive Maximum or Maximum Packet Size of 0 is a protocol error
  if (properties.receiveMaximum === 0) throw new MqttProtocolError(ReasonCode.ProtocolError, 'Receive Maximum 0');
  if (properties.maximumPacketSize === 0) throw new MqttProtocolError(ReasonCode.ProtocolError, 'Maximum Packet Size 0');
  return {
    receiveMaximum: properties.receiveMaximum ?? 65535,
    topicAliasMaximum: properties.topicAliasMaximum ?? 0,
    ...(properties.maximumPacketSize !== undefined ? { maximumPacketSize: properties.maximumPacketSize } : {}),
  };
}

/** The keep-alive this connection lives by, and the Server Keep Alive that tells a 5.0 client so. */
function negotiateKeepAlive(deps: BrokerDeps, connectionId: string, version: ProtocolVersion, requested: number) {
  const server = serverKeepAlive(version, requested, deps.doors.keepAliveLimit(connectionId));
  return { effective: server ?? requested, server };
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

function willOf(will: NonNullable<ConnectPacket['will']>, version: ProtocolVersion): WillMessage {
  const { willDelayInterval, ...rest } = (version === 5 ? will.properties : undefined) ?? {};
  const properties = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)) as MessageProperties;
  return {
    topic: will.topic,
    payload: Buffer.isBuffer(will.payload) ? will.payload : Buffer.from(will.payload),
    qos: will.qos ?? 0,
    retain: will.retain ?? false,
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
    ...(willDelayInterval ? { delayInterval: willDelayInterval } : {}),
  };
}

interface ConnackDetails {
  readonly deps: BrokerDeps;
  readonly maximumPacketSize: number;
  readonly assignedClientIdentifier?: string | undefined;
  readonly serverKeepAlive?: number | undefined;
  readonly responseInformation?: string | undefined;
}

function connack(version: ProtocolVersion, reasonCode: number, sessionPresent: boolean, details?: ConnackDetails, reasonString?: string): Buffer {
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
      ...(reasonCode === 0 && details
        ? {
            properties: {
              // [MQTT-3.2.2-16] the id the server chose for a client that sent an empty one
              ...(details.assignedClientIdentifier ? { assignedClientIdentifier: details.assignedClientIdentifier } : {}),
              ...(details.serverKeepAlive !== undefined ? { serverKeepAlive: details.serverKeepAlive } : {}),
              ...(details.responseInformation ? { responseInformation: details.responseInformation } : {}),
              maximumPacketSize: details.maximumPacketSize,
              // Absent means 65535, the protocol's own limit.
              ...(details.deps.config.receiveMaximum < 65535 ? { receiveMaximum: details.deps.config.receiveMaximum } : {}),
              topicAliasMaximum: details.deps.config.topicAliasMaximum,
              retainAvailable: true,
              sharedSubscriptionAvailable: true,
              subscriptionIdentifiersAvailable: true,
              wildcardSubscriptionAvailable: true,
            },
          }
        : {}),
      ...(reasonCode !== 0 && reasonString ? { properties: { reasonString } } : {}),
    },
    5,
  );
}
