import type { PubcompPacket } from '../protocol/codec';
import { receiveMaximumOf, selfRecipient, type PacketContext } from './context';
import { drainQueue } from './deliver';

/** PUBCOMP from a subscriber ends a QoS 2 delivery, and frees room for a queued message. */
export async function handlePubcomp(ctx: PacketContext, packet: PubcompPacket): Promise<void> {
  const { queued } = await ctx.deps.store.deliveries.completeOutgoing(ctx.connection.clientId, packet.messageId!, receiveMaximumOf(ctx.connection));
  if (queued) await drainQueue(ctx.deps, ctx.outbox, selfRecipient(ctx.connection));
}
