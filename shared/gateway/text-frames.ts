/**
 * The API Gateway door's encoding: API Gateway rejects binary frames from clients, so MQTT
 * packets travel base64-encoded in text messages, both ways.
 */
import { MqttFramer } from '../protocol/framer';

export function encodeTextMessage(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString('base64'));
}

/**
 * The packets in one text message. A message carries whole packets; bytes left over (or a
 * header that cannot be read) are passed on as one last packet, which the handler finds
 * malformed, closing the connection with the reason code.
 */
export function decodeTextMessage(text: string, maximumPacketSize: number): Buffer[] {
  const bytes = Buffer.from(text, 'base64');
  const framer = new MqttFramer(maximumPacketSize);
  try {
    const packets = framer.push(bytes);
    if (framer.pendingBytes > 0) packets.push(bytes.subarray(bytes.length - framer.pendingBytes));
    return packets;
  } catch {
    return [bytes];
  }
}
