import type { PubackPacket } from '../protocol/codec';
import { receiveMaximumOf, selfRecipient, type PacketContext } from './context';
import { drainQueue } from './deliver';

/** PUBACK from a subscriber ends a QoS 1 delivery [MQTT-4.3.2-3], and frees room for a queued message. */
export async function handlePuback(ctx: PacketContext, packet: PubackPacket): Promise<void> {
  const { queued } = await ctx.deps.store.deliveries.completeOutgoing(ctx.connection.clientId, packet.messageId!, receiveMaximumOf(ctx.connection));
  if (queued) await drainQueue(ctx.deps, ctx.outbox, selfRecipient(ctx.connection));
}
