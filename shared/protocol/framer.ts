/**
 * Splits an MQTT byte stream into whole packets without decoding them: the fixed header's
 * Remaining Length (a variable byte integer, at most 4 bytes) says where each packet ends.
 * The listener hands these frames to the packet handler, which decodes them.
 */
import { checkControlByte } from './control-byte';
import { readFixedHeader } from './fixed-header';
import { MqttProtocolError, ReasonCode } from './reason-codes';

export class MqttFramer {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maximumPacketSize: number) {}

  /** Append bytes from the stream; returns the packets they complete, in order. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const packets: Buffer[] = [];
    let offset = 0;
    for (;;) {
      if (offset < this.buffered.length) checkControlByte(this.buffered[offset]!);
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
