/**
 * Watches the frame headers a WebSocket client sends, so the emulator can hold a limit on each
 * frame as API Gateway does (32 KB), apart from the limit on whole messages. The ws library
 * only limits whole messages (maxPayload), so this reads just enough of each frame (RFC 6455
 * section 5.2: two header bytes, an extended length, the mask) to learn its payload length,
 * and skips the payload.
 */
export class FrameSizeGuard {
  private header = Buffer.alloc(0);
  private payloadLeft = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onTooBig: (length: number) => void,
  ) {}

  /** Bytes as they arrive from the client, before ws parses them. */
  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.payloadLeft > 0) {
        const skip = Math.min(this.payloadLeft, chunk.length - offset);
        this.payloadLeft -= skip;
        offset += skip;
        continue;
      }
      const take = Math.min(14 - this.header.length, chunk.length - offset);
      this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + take)]);
      offset += take;
      const parsed = parseHeader(this.header);
      if (!parsed) continue;
      // The bytes taken past this header belong to the payload (or the next frame).
      const surplus = this.header.length - parsed.headerLength;
      offset -= surplus;
      this.header = Buffer.alloc(0);
      if (parsed.payloadLength > this.maxFrameBytes) return this.onTooBig(parsed.payloadLength);
      this.payloadLeft = parsed.payloadLength;
    }
  }
}

function parseHeader(bytes: Buffer): { headerLength: number; payloadLength: number } | undefined {
  if (bytes.length < 2) return undefined;
  const masked = (bytes[1]! & 0x80) !== 0;
  const length7 = bytes[1]! & 0x7f;
  const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const headerLength = 2 + extended + (masked ? 4 : 0);
  if (bytes.length < headerLength) return undefined;
  const payloadLength = length7 === 126 ? bytes.readUInt16BE(2) : length7 === 127 ? Number(bytes.readBigUInt64BE(2)) : length7;
  return { headerLength, payloadLength };
}
