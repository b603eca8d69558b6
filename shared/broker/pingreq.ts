import type { Packet } from '../protocol/codec';
import { afterConnect, reply } from './context';

/** [MQTT-3.12.4-1] the server answers PINGREQ with PINGRESP. */
export const handlePingreq = afterConnect<Extract<Packet, { cmd: 'pingreq' }>>(async (ctx) => [reply(ctx, { cmd: 'pingresp' })]);
