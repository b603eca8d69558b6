/**
 * The checks PUBLISH and SUBSCRIBE make before doing anything: the topic limits and the client's
 * access (shared/security/). Each returns the 5.0 reason code of a refusal, or undefined.
 */
import type { PublishPacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import type { Action } from './actions';
import { isV5, reply, type ConnectedContext } from './context';
import { topicOverLimit, type SubscriptionQuota } from './limits';
import { isSysTopic } from './sys-topics';

export function publishRefusal(ctx: ConnectedContext, topic: string): number | undefined {
  // 5.0 PUBACK 0x90: "the Topic Name is not malformed, but is not accepted by this Server"
  const limit = topicOverLimit(ctx.deps.config, topic, ReasonCode.TopicNameInvalid);
  if (limit !== undefined) return limit;
  // The broker's own figures: no client writes there, whatever its ACL grants.
  if (isSysTopic(topic)) return ReasonCode.NotAuthorized;
  if (!ctx.deps.security.access(ctx.connection).canPublish(topic)) return ReasonCode.NotAuthorized;
  return undefined;
}

/**
 * A refused PUBLISH is not delivered. 5.0 at QoS 1 or 2: PUBACK or PUBREC carries the reason
 * code and the connection stays (no QoS 2 receipt is kept: the exchange ends with that PUBREC).
 * QoS 0 has no acknowledgement to carry one, and 3.1.1 has no codes: the message is dropped and,
 * at QoS 1 and 2, acknowledged as usual ([MQTT-3.3.5-2] allows acknowledging or closing; closing
 * would make the client resend it forever).
 */
export function refusePublish(ctx: ConnectedContext, packet: PublishPacket, reasonCode: number): Action[] {
  const { connectionId, clientId, username } = ctx.connection;
  ctx.deps.log.info('PUBLISH refused', { connectionId, clientId, username, topic: packet.topic, reasonCode });
  const v5 = isV5(ctx.connection);
  if (packet.qos === 1) return [reply(ctx, { cmd: 'puback', messageId: packet.messageId!, ...(v5 ? { reasonCode } : {}) })];
  if (packet.qos === 2) return [reply(ctx, { cmd: 'pubrec', messageId: packet.messageId!, ...(v5 ? { reasonCode } : {}) })];
  return [];
}

/**
 * For one filter of a SUBSCRIBE: limits, access, then the client's subscription quota. `filter` is
 * the topic filter (without a `$share/<group>/` prefix); `sent` the filter as subscribed, which
 * the ACL checks and the quota counts.
 */
export function subscriptionRefusal(ctx: ConnectedContext, filter: string, quota: SubscriptionQuota, sent = filter): number | undefined {
  // 5.0 SUBACK 0x8F: "the Topic Filter is correctly formed but is not allowed for this Client"
  const limit = topicOverLimit(ctx.deps.config, filter, ReasonCode.TopicFilterInvalid);
  if (limit !== undefined) return limit;
  // The ACL sees a shared subscription whole: it governs who may join which share.
  if (!ctx.deps.security.access(ctx.connection).canSubscribe(sent)) {
    ctx.deps.log.info('SUBSCRIBE refused', { connectionId: ctx.connection.connectionId, clientId: ctx.connection.clientId, filter: sent });
    return ReasonCode.NotAuthorized;
  }
  if (!quota.admit(sent)) return ReasonCode.QuotaExceeded;
  return undefined;
}
