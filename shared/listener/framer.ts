/**
 * Splits an MQTT byte stream into whole packets without decoding them: the fixed header's
 * Remaining Length (a variable byte integer, at most 4 bytes) says where each packet ends.
 * The listener hands these frames to the packet handler, which decodes them.
 */
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';

export class MqttFramer {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maximumPacketSize: number) {}

  /** Append bytes from the stream; returns the packets they complete, in order. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const packets: Buffer[] = [];
    let offset = 0;
    for (;;) {
      const header = readFixedHeader(this.buffered, offset);
      if (header === undefined) break;
      const total = header.headerLength + header.remainingLength;
      // [MQTT-3.2.2-15]-style limit on the server side: the listener refuses what it will not carry
      if (total > this.maximumPacketSize) {
        throw new MqttProtocolError(ReasonCode.PacketTooLarge, `packet of ${total} bytes exceeds ${this.maximumPacketSize}`);
      }
      if (this.buffered.length - offset < total) break;
      packets.push(this.buffered.subarray(offset, offset + total));
      offset += total;
    }
    this.buffered = offset === this.buffered.length ? Buffer.alloc(0) : this.buffered.subarray(offset);
    return packets;
  }

  /** Bytes received that do not yet make a whole packet. */
  get pendingBytes(): number {
    return this.buffered.length;
  }
}

interface FixedHeader {
  headerLength: number;
  remainingLength: number;
}

/** Undefined while the header is incomplete; throws when the length encoding is malformed. */
export function readFixedHeader(bytes: Buffer, offset = 0): FixedHeader | undefined {
  let remainingLength = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    if (offset + i >= bytes.length) return undefined;
    const byte = bytes[offset + i]!;
    remainingLength += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { headerLength: 1 + i, remainingLength };
    multiplier *= 128;
  }
  // [MQTT-1.5.5-1] a variable byte integer uses at most four bytes
  throw new MqttProtocolError(ReasonCode.MalformedPacket, 'remaining length longer than four bytes');
}
