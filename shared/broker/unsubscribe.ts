/** UNSUBSCRIBE: remove the subscriptions, then UNSUBACK (5.0: one reason code per filter). */
import type { UnsubscribePacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { isV5, reply, type PacketContext } from './context';

export async function handleUnsubscribe(ctx: PacketContext, packet: UnsubscribePacket): Promise<void> {
  const existed = await ctx.deps.store.unsubscribe(ctx.connection.clientId, packet.unsubscriptions);
  if (!isV5(ctx.connection)) {
    // [MQTT-3.10.4-4] (3.1.1) UNSUBACK even when no subscription matched
    reply(ctx, { cmd: 'unsuback', messageId: packet.messageId!, granted: [] });
    return;
  }
  const granted = existed.map((found) => (found ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted));
  reply(ctx, { cmd: 'unsuback', messageId: packet.messageId!, granted });
}
