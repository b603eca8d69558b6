/**
 * The first byte of every packet, checked as soon as it arrives, so a stream that starts a packet
 * no parser could accept is closed at once instead of after its (claimed) length has trickled in:
 * type 0 is reserved ([MQTT-2.2.1]) and the flag bits of every type but PUBLISH are fixed
 * ([MQTT-2.2.2-1], [MQTT-2.2.2-2]: anything else is malformed); PUBLISH may not have QoS 3
 * ([MQTT-3.3.1-4]).
 */
import { MqttProtocolError, ReasonCode } from './reason-codes';

const PUBLISH = 3;
/** The required flags of each packet type, by type (index 3, PUBLISH, is checked apart). */
const FIXED_FLAGS = [-1, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

export function checkControlByte(byte: number): void {
  const type = byte >> 4;
  const flags = byte & 0x0f;
  if (type === 0) throw new MqttProtocolError(ReasonCode.MalformedPacket, 'packet type 0 is reserved');
  if (type === PUBLISH) {
    if ((flags & 0x06) === 0x06) throw new MqttProtocolError(ReasonCode.MalformedPacket, 'PUBLISH with QoS 3');
    return;
  }
  if (flags !== FIXED_FLAGS[type]) throw new MqttProtocolError(ReasonCode.MalformedPacket, `reserved flag bits 0x${flags.toString(16)} on packet type ${type}`);
}
