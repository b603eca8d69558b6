/**
 * The API Gateway door's encoding: API Gateway rejects binary frames from clients, so MQTT
 * packets travel base64-encoded in text messages, both ways.
 */
import { MqttFramer } from '../protocol/framer';

export function encodeTextMessage(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString('base64'));
}

/**
 * Whole packets (as the broker wrote them) grouped into messages of at most `maxBytes` each
 * before base64, in order; a packet larger than that is a message of its own.
 */
export function groupPackets(bytes: Buffer, maxBytes: number): Buffer[] {
  if (bytes.length <= maxBytes) return [bytes];
  const groups: Buffer[] = [];
  let current: Buffer[] = [];
  let size = 0;
  for (const packet of new MqttFramer(Number.MAX_SAFE_INTEGER).push(bytes)) {
    if (size > 0 && size + packet.length > maxBytes) {
      groups.push(Buffer.concat(current));
      current = [];
      size = 0;
    }
    current.push(packet);
    size += packet.length;
  }
  if (size > 0) groups.push(Buffer.concat(current));
  return groups;
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
