/** UNSUBSCRIBE: remove the subscriptions, then UNSUBACK (5.0: one reason code per filter). */
import type { UnsubscribePacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { checkTopicFilter } from '../protocol/topic';
import { afterConnect, isV5, reply } from './context';

export const handleUnsubscribe = afterConnect<UnsubscribePacket>(async (ctx, packet) => {
  const isValid = packet.unsubscriptions.map((filter) => checkTopicFilter(filter).ok);
  const removed = await ctx.deps.store.subscriptions.unsubscribe(ctx.connection.clientId, packet.unsubscriptions.filter((_, i) => isValid[i]));
  ctx.batch.routes.clear();
  // [MQTT-3.10.4-4] (3.1.1) UNSUBACK even when no subscription matched
  if (!isV5(ctx.connection)) return [reply(ctx, { cmd: 'unsuback', messageId: packet.messageId!, granted: [] })];
  let next = 0;
  const granted = isValid.map((valid) => {
    if (!valid) return ReasonCode.TopicFilterInvalid;
    return removed[next++] ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted;
  });
  return [reply(ctx, { cmd: 'unsuback', messageId: packet.messageId!, granted })];
});
