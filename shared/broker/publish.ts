/**
 * PUBLISH from a client. Steps, in order:
 *   resolveTopicAlias -> checkPacket -> countUnacknowledged -> (QoS 2) receive
 *     -> storeRetained -> route; then the actions: deliver -> (QoS 2) routed -> acknowledge
 * The acknowledgement comes after the deliveries in the actions, so it goes out only once they
 * are in flight or queued: nothing acknowledged is lost, and nothing is acknowledged that failed.
 */
import type { PublishPacket } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { checkTopicName } from '../protocol/topic';
import { deliver, routed } from './actions';
import { publishRefusal, refusePublish } from './authorization';
import { afterConnect, isV5, reply, type ConnectedContext } from './context';
import type { ApplicationMessage, MessageProperties } from './ports';
import { acceptMessage } from './application-message';
import type { Routed } from './route';

export const handlePublish = afterConnect<PublishPacket>(async (ctx, packet) => {
  const v5 = isV5(ctx.connection);
  const topicName = await resolveTopicAlias(ctx, packet);
  // [MQTT-3.3.1-2] DUP must be 0 on a QoS 0 message
  if (packet.qos === 0 && packet.dup) throw new MqttProtocolError(ReasonCode.MalformedPacket, 'DUP set on a QoS 0 PUBLISH');
  const topic = checkTopicName(topicName);
  if (!topic.ok) throw new MqttProtocolError(ReasonCode.TopicNameInvalid, topic.reason);
  if (packet.qos === 1 || packet.qos === 2) await countUnacknowledged(ctx, packet.qos);
  // Topic limits and the ACL; before a QoS 2 receipt is recorded, since a refused exchange ends at PUBREC.
  const refusal = publishRefusal(ctx, topicName);
  if (refusal !== undefined) return refusePublish(ctx, packet, refusal, topicName);

  const now = ctx.deps.now();
  const properties = v5 && packet.properties ? forwardedProperties(packet.properties) : undefined;
  const message: ApplicationMessage = {
    topic: topicName,
    payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
    qos: packet.qos,
    retain: packet.retain,
    ...(properties ? { properties } : {}),
    ...(properties?.messageExpiryInterval !== undefined ? { expiresAtMs: now + properties.messageExpiryInterval * 1000 } : {}),
  };

  if (packet.qos === 2) {
    // [MQTT-4.3.3-2] a resend of an unreleased packet id is acknowledged but not delivered again.
    // The receipt is remembered before routing and marked routed after: a handler that dies (or a
    // store that fails) in between leaves it unrouted, so the client's resend routes it again, and
    // each delivery's exactly-once mark (QueuedMessage.once) keeps a subscriber that has it already
    // from getting it twice. (Not only when DUP is set: MQTT.js resends without it.)
    const receipt = await ctx.deps.store.receipts.receiveQos2(ctx.connection.clientId, packet.messageId!);
    const pubrec = (matched: number) => reply(ctx, { cmd: 'pubrec', messageId: packet.messageId!, ...(v5 ? { reasonCode: matchedCode(matched) } : {}) });
    if (receipt.routed) return [pubrec(1)];
    const accepted = await accept(ctx, { ...message, origin: receipt });
    if (accepted === 'over-quota') {
      // The exchange ends with this PUBREC: no receipt is kept.
      await ctx.deps.store.receipts.releaseIncomingQos2(ctx.connection.clientId, packet.messageId!);
      return refusePublish(ctx, packet, ReasonCode.QuotaExceeded, topicName);
    }
    return [deliver(accepted.deliveries, accepted.rulesAccepted), routed(ctx.connection.clientId, packet.messageId!), pubrec(accepted.matched)];
  }
  const accepted = await accept(ctx, message);
  if (accepted === 'over-quota') return refusePublish(ctx, packet, ReasonCode.QuotaExceeded, topicName);
  const { deliveries, matched, rulesAccepted } = accepted;
  if (packet.qos === 0) return [deliver(deliveries)];
  // [MQTT-4.3.2-2] PUBACK carries the packet id, after the message is accepted (by the rules' targets too)
  return [deliver(deliveries, rulesAccepted), reply(ctx, { cmd: 'puback', messageId: packet.messageId!, ...(v5 ? { reasonCode: matchedCode(matched) } : {}) })];
});

/** Stored if retained, then routed (application-message.ts); a 5.0 QoS 1/2 publisher hears a retained-quota refusal (QoS 0 and 3.1.1 cannot be told). */
function accept(ctx: ConnectedContext, message: ApplicationMessage): Promise<Routed | 'over-quota'> {
  const { clientId, username, acl } = ctx.connection;
  const hearsRefusals = isV5(ctx.connection) && message.qos > 0;
  const publisher = { clientId, ...(username !== undefined ? { username } : {}), ...(acl !== undefined ? { acl } : {}), hearsRefusals };
  return acceptMessage(ctx.deps, message, publisher, ctx.batch.routes, { deferRules: true });
}

/**
 * 5.0 topic aliases the client sets, within the Topic Alias Maximum the broker announced.
 * [MQTT-3.3.2-12] the broker accepts 1..maximum; 0 or above it is a protocol error (0x94, MQTT 5.0
 * 3.3.4); an alias with an empty topic name must have been set before (0x82).
 */
async function resolveTopicAlias(ctx: ConnectedContext, packet: PublishPacket): Promise<string> {
  const alias = packet.properties?.topicAlias;
  if (alias === undefined) return packet.topic;
  const maximum = isV5(ctx.connection) ? ctx.deps.config.topicAliasMaximum : 0;
  if (alias === 0 || alias > maximum) throw new MqttProtocolError(ReasonCode.TopicAliasInvalid, `topic alias ${alias} is outside 1..${maximum}`);
  if (packet.topic.length === 0) {
    const topic = ctx.batch.topicAliases.get(alias);
    if (topic === undefined) throw new MqttProtocolError(ReasonCode.ProtocolError, `topic alias ${alias} was never set`);
    return topic;
  }
  if (ctx.batch.topicAliases.get(alias) !== packet.topic) {
    ctx.batch.topicAliases.set(alias, packet.topic);
    await ctx.deps.store.connections.updateConnection(ctx.connection.connectionId, { topicAlias: [alias, packet.topic] });
  }
  return packet.topic;
}

/**
 * [MQTT-3.3.4-7] (5.0) a client sending more QoS 1/2 PUBLISHes than the broker's Receive Maximum
 * without waiting for acknowledgements is disconnected with 0x93 (MQTT 5.0 3.3.4). QoS 1 PUBLISHes are
 * acknowledged at the end of their run; QoS 2 ones stay unacknowledged until PUBREL, so the
 * client's stored QoS 2 receipts count too. They are read once per batch, and only when they can
 * matter: at the batch's first QoS 2 PUBLISH, or once its own QoS 1/2 PUBLISHes pass the limit.
 * A fleet device's lone QoS 1 PUBLISH costs no read; a client that left QoS 2 PUBLISHes
 * unreleased and then sends QoS 1 ones is caught at its next QoS 2 PUBLISH or past the limit.
 * With the protocol's own limit (65535) nothing can exceed it, and nothing is read.
 */
async function countUnacknowledged(ctx: ConnectedContext, qos: 1 | 2): Promise<void> {
  const limit = ctx.deps.config.receiveMaximum;
  if (!isV5(ctx.connection) || limit >= 65535) return;
  const batch = ctx.batch;
  batch.unacknowledged = (batch.unacknowledged ?? 0) + 1;
  if (batch.storedQos2 === undefined && (qos === 2 || batch.unacknowledged > limit)) {
    batch.storedQos2 = await ctx.deps.store.receipts.countIncomingQos2(ctx.connection.clientId);
  }
  if (batch.unacknowledged + (batch.storedQos2 ?? 0) > limit) {
    throw new MqttProtocolError(ReasonCode.ReceiveMaximumExceeded, `more than ${limit} unacknowledged QoS 1/2 PUBLISHes`);
  }
}

function matchedCode(subscriberCount: number): number {
  return subscriberCount > 0 ? ReasonCode.Success : ReasonCode.NoMatchingSubscribers;
}

/** The properties a subscriber receives untouched ([MQTT-3.3.2-15] onwards); the topic alias is the sender's own. */
function forwardedProperties(properties: NonNullable<PublishPacket['properties']>): MessageProperties {
  const { payloadFormatIndicator, messageExpiryInterval, contentType, responseTopic, correlationData, userProperties } = properties;
  return Object.fromEntries(
    Object.entries({ payloadFormatIndicator, messageExpiryInterval, contentType, responseTopic, correlationData, userProperties }).filter(
      ([, value]) => value !== undefined,
    ),
  ) as MessageProperties;
}

