/**
 * The acknowledgements of the QoS 1 and 2 flows, each a few lines:
 * PUBACK and PUBCOMP end an outgoing message, PUBREC moves it to PUBREL, PUBREL ends an
 * incoming QoS 2 receipt.
 */
import type { PubackPacket, PubcompPacket, PubrecPacket, PubrelPacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { isV5, reply, type PacketContext } from './context';

export async function handlePuback(ctx: PacketContext, packet: PubackPacket): Promise<void> {
  await ctx.deps.store.completeOutgoing(ctx.connection.clientId, packet.messageId!);
}

export async function handlePubrec(ctx: PacketContext, packet: PubrecPacket): Promise<void> {
  const { clientId } = ctx.connection;
  // 5.0: a PUBREC with an error reason code ends the exchange; no PUBREL follows [MQTT-4.3.3-4]-adjacent
  if (isV5(ctx.connection) && (packet.reasonCode ?? 0) >= 0x80) {
    await ctx.deps.store.completeOutgoing(clientId, packet.messageId!);
    return;
  }
  const known = await ctx.deps.store.releaseOutgoing(clientId, packet.messageId!);
  // [MQTT-4.3.3-3] answer PUBREC with PUBREL carrying the same packet id
  reply(ctx, {
    cmd: 'pubrel',
    messageId: packet.messageId!,
    ...(isV5(ctx.connection) && !known ? { reasonCode: ReasonCode.PacketIdentifierNotFound } : {}),
  });
}

export async function handlePubcomp(ctx: PacketContext, packet: PubcompPacket): Promise<void> {
  await ctx.deps.store.completeOutgoing(ctx.connection.clientId, packet.messageId!);
}

export async function handlePubrel(ctx: PacketContext, packet: PubrelPacket): Promise<void> {
  const known = await ctx.deps.store.releaseIncomingQos2(ctx.connection.clientId, packet.messageId!);
  // [MQTT-4.3.3-11] answer PUBREL with PUBCOMP carrying the same packet id
  reply(ctx, {
    cmd: 'pubcomp',
    messageId: packet.messageId!,
    ...(isV5(ctx.connection) && !known ? { reasonCode: ReasonCode.PacketIdentifierNotFound } : {}),
  });
}
