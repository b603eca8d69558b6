/** UNSUBSCRIBE: remove the subscriptions, then UNSUBACK (5.0: one reason code per filter). */
import type { UnsubscribePacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { checkTopicFilter } from '../protocol/topic';
import { isV5, reply, type PacketContext } from './context';

export async function handleUnsubscribe(ctx: PacketContext, packet: UnsubscribePacket): Promise<void> {
  const isValid = packet.unsubscriptions.map((filter) => checkTopicFilter(filter).ok);
  const removed = await ctx.deps.store.subscriptions.unsubscribe(ctx.connection.clientId, packet.unsubscriptions.filter((_, i) => isValid[i]));
  ctx.batch.routes.clear();
  if (!isV5(ctx.connection)) {
    // [MQTT-3.10.4-4] (3.1.1) UNSUBACK even when no subscription matched
    reply(ctx, { cmd: 'unsuback', messageId: packet.messageId!, granted: [] });
    return;
  }
  let next = 0;
  const granted = isValid.map((valid) => {
    if (!valid) return ReasonCode.TopicFilterInvalid;
    return removed[next++] ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted;
  });
  reply(ctx, { cmd: 'unsuback', messageId: packet.messageId!, granted });
}
