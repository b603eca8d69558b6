/**
 * The checks PUBLISH and SUBSCRIBE make before doing anything: the topic limits and the client's
 * access (shared/security/). Each returns the 5.0 reason code of a refusal, or undefined.
 */
import type { PublishPacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import type { Action } from './actions';
import { isV5, reply, type ConnectedContext } from './context';
import { topicOverLimit, type SubscriptionQuota } from './limits';
import { publishProblem, withReasonString } from './problem-information';
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
/** `topic`: the topic name, resolved from a topic alias if the packet used one. */
export function refusePublish(ctx: ConnectedContext, packet: PublishPacket, reasonCode: number, topic = packet.topic): Action[] {
  const { connectionId, clientId, username } = ctx.connection;
  ctx.deps.log.info('PUBLISH refused', { connectionId, clientId, username, topic, reasonCode });
  const v5 = isV5(ctx.connection);
  if (packet.qos === 0) return [];
  const acknowledgement = { cmd: packet.qos === 1 ? 'puback' : 'pubrec', messageId: packet.messageId!, ...(v5 ? { reasonCode } : {}) } as const;
  // 5.0: a Reason String says why, unless the client asked for none
  return [reply(ctx, withReasonString(ctx.connection, acknowledgement, publishProblem(ctx.deps.config, topic, reasonCode)))];
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

/**
 * The client's deny rules a granted filter (as sent) overlaps, to store with its subscription:
 * routing skips a message whose topic one matches (route.ts), at no read of the ACL per message.
 */
export function subscriptionDenials(ctx: ConnectedContext, sent: string): { denials?: readonly string[] } {
  const denials = ctx.deps.security.access(ctx.connection).denialsFor(sent);
  return denials.length > 0 ? { denials } : {};
}
