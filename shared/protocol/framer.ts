/**
 * Splits an MQTT byte stream into whole packets without decoding them: the fixed header's
 * Remaining Length (a variable byte integer, at most 4 bytes) says where each packet ends.
 * The listener hands these frames to the packet handler, which decodes them.
 *
 * Chunks are kept as they arrive, with a running length, and joined once, when the packet they
 * carry is whole: a packet that arrives in many small chunks costs one copy of itself, not one
 * copy of everything received so far per chunk.
 */
import { checkControlByte } from './control-byte';
import { readFixedHeader } from './fixed-header';
import { MqttProtocolError, ReasonCode } from './reason-codes';

/** A fixed header is at most 5 bytes: the control byte and a Remaining Length of up to 4. */
const MAX_FIXED_HEADER = 5;

export class MqttFramer {
  /** Received bytes not yet returned as packets, in arrival order. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Size of the packet at the head of the stream, once its fixed header has been read. */
  private packetSize: number | undefined;

  private framedAny = false;

  /**
   * `firstPacketMaximum` limits the stream's first packet (the CONNECT) more tightly than the
   * rest: until it is whole, nobody is authenticated, so the stream may hold only that much.
   */
  constructor(
    private readonly maximumPacketSize: number,
    private readonly firstPacketMaximum = maximumPacketSize,
  ) {}

  /** Append bytes from the stream; returns the packets they complete, in order. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const packets: Buffer[] = [];
    for (;;) {
      if (this.packetSize === undefined) {
        if (this.buffered === 0) break;
        const head = this.peek(MAX_FIXED_HEADER);
        checkControlByte(head[0]!);
        const header = readFixedHeader(head);
        if (header === undefined) break;
        const total = header.headerLength + header.remainingLength;
        const maximum = this.framedAny ? this.maximumPacketSize : Math.min(this.firstPacketMaximum, this.maximumPacketSize);
        // [MQTT-3.2.2-15]-style limit on the server side: the listener refuses what it will not carry
        if (total > maximum) {
          throw new MqttProtocolError(ReasonCode.PacketTooLarge, `${this.framedAny ? 'packet' : 'first packet'} of ${total} bytes exceeds ${maximum}`);
        }
        this.packetSize = total;
      }
      if (this.buffered < this.packetSize) break;
      packets.push(this.take(this.packetSize));
      this.packetSize = undefined;
      this.framedAny = true;
    }
    return packets;
  }

  /** Bytes received that do not yet make a whole packet. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** The first `n` bytes buffered (fewer if fewer are), without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n || this.chunks.length === 1) return first.subarray(0, n);
    // n chunks hold at least n bytes (none is empty); concat copies no more than the length asked.
    return Buffer.concat(this.chunks.slice(0, n), Math.min(n, this.buffered));
  }

  /** Removes and returns the first `n` bytes (n <= buffered): a view when one chunk holds them, else one copy. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    let used = 0;
    let whole = 0;
    while (whole < this.chunks.length && used + this.chunks[whole]!.length <= n) used += this.chunks[whole++]!.length;
    const parts = this.chunks.slice(0, whole);
    if (used < n) {
      const last = this.chunks[whole]!;
      parts.push(last.subarray(0, n - used));
      this.chunks[whole] = last.subarray(n - used);
    }
    this.chunks.splice(0, whole);
    return Buffer.concat(parts, n);
  }
}
