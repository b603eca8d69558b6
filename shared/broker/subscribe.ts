/**
 * SUBSCRIBE: validate each filter, store the accepted subscriptions (so a PUBLISH after the
 * SUBACK finds them), then SUBACK with one reason code per filter, in order.
 */
import type { SubscribePacket } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { checkTopicFilter } from '../protocol/topic';
import { subscriptionRefusal } from './authorization';
import { isV5, reply, type PacketContext } from './context';
import { SubscriptionQuota } from './limits';
import type { Subscription } from './ports';

const SHARED_PREFIX = '$share/';

export async function handleSubscribe(ctx: PacketContext, packet: SubscribePacket): Promise<void> {
  const v5 = isV5(ctx.connection);
  // Subscription identifiers are announced as unavailable (CONNACK), so sending one is a protocol error.
  if (packet.properties?.subscriptionIdentifier !== undefined) {
    throw new MqttProtocolError(ReasonCode.SubscriptionIdentifiersNotSupported, 'subscription identifiers are not supported');
  }
  const quota = await SubscriptionQuota.load(ctx);
  const accepted: Subscription[] = [];
  const granted = packet.subscriptions.map((request): number => {
    const check = checkTopicFilter(request.topic);
    // 3.1.1 has a single failure code, 0x80 [MQTT-3.9.3-2]
    if (!check.ok) return v5 ? ReasonCode.TopicFilterInvalid : ReasonCode.UnspecifiedError;
    if (request.topic.startsWith(SHARED_PREFIX)) {
      return v5 ? ReasonCode.SharedSubscriptionsNotSupported : ReasonCode.UnspecifiedError;
    }
    // Topic limits, the ACL and the subscriptions-per-client quota
    const refusal = subscriptionRefusal(ctx, request.topic, quota);
    if (refusal !== undefined) return v5 ? refusal : ReasonCode.UnspecifiedError;
    accepted.push({
      clientId: ctx.connection.clientId,
      filter: request.topic,
      qos: request.qos,
      ...(v5 ? { noLocal: request.nl ?? false, retainAsPublished: request.rap ?? false, retainHandling: request.rh ?? 0 } : {}),
    });
    // [MQTT-3.8.4-6] the granted QoS is the requested one: the broker supports QoS 2
    return request.qos;
  });
  // [MQTT-3.8.4-3] a subscription with the same filter replaces the existing one
  if (accepted.length > 0) await ctx.deps.store.subscribe(ctx.connection.clientId, accepted);
  // [MQTT-3.8.4-1] the SUBACK carries the packet identifier of the SUBSCRIBE
  reply(ctx, { cmd: 'suback', messageId: packet.messageId!, granted });
}
