import type { PubackPacket } from '../protocol/codec';
import type { PacketContext } from './context';

/** PUBACK from a subscriber ends a QoS 1 delivery [MQTT-4.3.2-3]. */
export async function handlePuback(ctx: PacketContext, packet: PubackPacket): Promise<void> {
  await ctx.deps.store.completeOutgoing(ctx.connection.clientId, packet.messageId!);
}
