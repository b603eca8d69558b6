import { reply, type PacketContext } from './context';

/** [MQTT-3.12.4-1] the server answers PINGREQ with PINGRESP. */
export function handlePingreq(ctx: PacketContext): void {
  reply(ctx, { cmd: 'pingresp' });
}
