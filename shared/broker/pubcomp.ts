import type { PubcompPacket } from '../protocol/codec';
import { drain } from './actions';
import { afterConnect, receiveMaximumOf, selfRecipient } from './context';

/** PUBCOMP from a subscriber ends a QoS 2 delivery, and frees room for a queued message. */
export const handlePubcomp = afterConnect<PubcompPacket>(async (ctx, packet) => {
  const { queued } = await ctx.deps.store.deliveries.completeOutgoing(ctx.connection.clientId, packet.messageId!, receiveMaximumOf(ctx.connection));
  return queued ? [drain(selfRecipient(ctx.connection))] : [];
});
