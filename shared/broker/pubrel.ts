import type { PubrelPacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { afterConnect, isV5, reply } from './context';

/** PUBREL from a publisher: forget the QoS 2 packet id, answer PUBCOMP. */
export const handlePubrel = afterConnect<PubrelPacket>(async (ctx, packet) => {
  const known = await ctx.deps.store.receipts.releaseIncomingQos2(ctx.connection.clientId, packet.messageId!);
  if (known && ctx.batch.unacknowledged !== undefined) ctx.batch.unacknowledged -= 1;
  // [MQTT-4.3.3-11] answer PUBREL with PUBCOMP carrying the same packet id
  return [
    reply(ctx, {
      cmd: 'pubcomp',
      messageId: packet.messageId!,
      ...(isV5(ctx.connection) && !known ? { reasonCode: ReasonCode.PacketIdentifierNotFound } : {}),
    }),
  ];
});
