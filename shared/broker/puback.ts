import type { PubackPacket } from '../protocol/codec';
import { drain } from './actions';
import { afterConnect, receiveMaximumOf, selfRecipient } from './context';

/** PUBACK from a subscriber ends a QoS 1 delivery [MQTT-4.3.2-3], and frees room for a queued message. */
export const handlePuback = afterConnect<PubackPacket>(async (ctx, packet) => {
  const { queued } = await ctx.deps.store.deliveries.completeOutgoing(ctx.connection.clientId, packet.messageId!, receiveMaximumOf(ctx.connection));
  return queued ? [drain(selfRecipient(ctx.connection))] : [];
});
