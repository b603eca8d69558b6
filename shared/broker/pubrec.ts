import type { PubrecPacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { drain } from './actions';
import { afterConnect, isV5, receiveMaximumOf, reply, selfRecipient } from './context';

/** PUBREC from a subscriber: the QoS 2 delivery now awaits PUBCOMP; answer PUBREL. */
export const handlePubrec = afterConnect<PubrecPacket>(async (ctx, packet) => {
  const { clientId } = ctx.connection;
  // 5.0: a PUBREC with an error reason code ends the exchange; no PUBREL follows
  if (isV5(ctx.connection) && (packet.reasonCode ?? 0) >= 0x80) {
    const { queued } = await ctx.deps.store.deliveries.completeOutgoing(clientId, packet.messageId!, receiveMaximumOf(ctx.connection));
    return queued ? [drain(selfRecipient(ctx.connection))] : [];
  }
  const known = await ctx.deps.store.deliveries.releaseOutgoing(clientId, packet.messageId!);
  // [MQTT-4.3.3-3] answer PUBREC with PUBREL carrying the same packet id
  return [
    reply(ctx, {
      cmd: 'pubrel',
      messageId: packet.messageId!,
      ...(isV5(ctx.connection) && !known ? { reasonCode: ReasonCode.PacketIdentifierNotFound } : {}),
    }),
  ];
});
