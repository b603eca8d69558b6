import type { PubcompPacket } from '../protocol/codec';
import type { PacketContext } from './context';

/** PUBCOMP from a subscriber ends a QoS 2 delivery. */
export async function handlePubcomp(ctx: PacketContext, packet: PubcompPacket): Promise<void> {
  await ctx.deps.store.completeOutgoing(ctx.connection.clientId, packet.messageId!);
}
