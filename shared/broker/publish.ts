/**
 * PUBLISH from a client: check it, (QoS 2) record the packet id so a resend is not delivered
 * twice, route it to the matching subscribers, and only then acknowledge it.
 */
import type { PublishPacket } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { checkTopicName } from '../protocol/topic';
import { publishRefusal, refusePublish } from './authorization';
import { isV5, reply, type PacketContext } from './context';
import type { ApplicationMessage, MessageProperties } from './ports';
import { routeMessage } from './route';

export async function handlePublish(ctx: PacketContext, packet: PublishPacket): Promise<void> {
  const v5 = isV5(ctx.connection);
  // Topic Alias Maximum is not announced, so it is 0: any alias is invalid [MQTT-3.3.2-9]
  if (packet.properties?.topicAlias !== undefined) {
    throw new MqttProtocolError(ReasonCode.TopicAliasInvalid, 'topic aliases are not accepted');
  }
  // [MQTT-3.3.1-2] DUP must be 0 on a QoS 0 message
  if (packet.qos === 0 && packet.dup) throw new MqttProtocolError(ReasonCode.MalformedPacket, 'DUP set on a QoS 0 PUBLISH');
  const topic = checkTopicName(packet.topic);
  if (!topic.ok) throw new MqttProtocolError(ReasonCode.TopicNameInvalid, topic.reason);
  // Retain Available is announced as 0 to 5.0 clients [MQTT-3.2.2-14]; 3.1.1 clients have no way to learn it.
  if (packet.retain && v5) throw new MqttProtocolError(ReasonCode.RetainNotSupported, 'retained messages are not supported yet');
  // Topic limits and the ACL; before a QoS 2 receipt is recorded, since a refused exchange ends at PUBREC.
  const refusal = publishRefusal(ctx, packet.topic);
  if (refusal !== undefined) return refusePublish(ctx, packet, refusal);

  const message: ApplicationMessage = {
    topic: packet.topic,
    payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
    qos: packet.qos,
    retain: packet.retain,
    ...(v5 && packet.properties ? { properties: forwardedProperties(packet.properties) } : {}),
  };

  switch (packet.qos) {
    case 0:
      await routeMessage(ctx.deps, ctx.outbox, message, ctx.connection.clientId);
      return;
    case 1: {
      const delivered = await routeMessage(ctx.deps, ctx.outbox, message, ctx.connection.clientId);
      // [MQTT-4.3.2-2] PUBACK carries the packet id, after the message is accepted
      reply(ctx, { cmd: 'puback', messageId: packet.messageId!, ...(v5 ? { reasonCode: matchedCode(delivered) } : {}) });
      return;
    }
    case 2: {
      // [MQTT-4.3.3-2] a resend of an unreleased packet id is acknowledged but not delivered again
      const first = await ctx.deps.store.recordIncomingQos2(ctx.connection.clientId, packet.messageId!);
      const delivered = first ? await routeMessage(ctx.deps, ctx.outbox, message, ctx.connection.clientId) : 1;
      reply(ctx, { cmd: 'pubrec', messageId: packet.messageId!, ...(v5 ? { reasonCode: matchedCode(delivered) } : {}) });
      return;
    }
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
