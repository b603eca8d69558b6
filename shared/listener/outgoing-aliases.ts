/**
 * A device connection's outgoing topic aliases (5.0), owned by the listener, which holds the
 * socket: every byte to the client passes here in the order it is written, so an alias set by one
 * PUBLISH is known for every later one, whichever handler sent it. A topic gets an alias on first
 * use, while the table has room under the client's Topic Alias Maximum [MQTT-3.3.2-11]; later
 * PUBLISHes of that topic travel with the alias and an empty topic name. The table lives and dies
 * with the network connection ([MQTT-3.3.2-7]: aliases do not outlive it). The handlers leave
 * this door's PUBLISHes unaliased (Doors.assignsTopicAliases).
 */
import { decodePacket, encodePacket, type PublishPacket } from '../protocol/codec';
import { readFixedHeader } from '../protocol/fixed-header';

const PUBLISH_TYPE = 3;

export class OutgoingAliases {
  private readonly aliases = new Map<string, number>();
  /**
   * A PUBLISH came with an alias of its own (a handler of an older version, which chose aliases
   * per delivery, during a rolling deploy): the client's mappings are no longer only ours, so
   * from then on topics go out as they are.
   */
  private foreign = false;

  constructor(
    /** The client's Topic Alias Maximum, from its CONNECT (at least 1). */
    private readonly maximum: number,
    /** The client's Maximum Packet Size, from its CONNECT: setting an alias adds 3 bytes. */
    private readonly maximumPacketSize: number | undefined,
  ) {}

  /** The bytes with each PUBLISH in them aliased; bytes that do not frame as packets go out as they are. */
  rewrite(bytes: Buffer): Buffer {
    const out: Buffer[] = [];
    let offset = 0;
    let changed = false;
    while (offset < bytes.length) {
      const header = readFixedHeader(bytes, offset);
      const end = header ? offset + header.headerLength + header.remainingLength : Number.POSITIVE_INFINITY;
      if (!header || end > bytes.length) return changed ? Buffer.concat([...out, bytes.subarray(offset)]) : bytes;
      const packet = bytes.subarray(offset, end);
      const aliased = packet[0]! >> 4 === PUBLISH_TYPE ? this.alias(packet) : packet;
      changed ||= aliased !== packet;
      out.push(aliased);
      offset = end;
    }
    return changed ? Buffer.concat(out) : bytes;
  }

  private alias(bytes: Buffer): Buffer {
    let packet: PublishPacket;
    try {
      packet = decodePacket(bytes, 5) as PublishPacket;
    } catch {
      return bytes; // not ours to judge: it goes out as the handler wrote it
    }
    if (packet.properties?.topicAlias !== undefined) this.foreign = true;
    // A PUBLISH that already names an alias, or has no topic, is left as it is.
    if (this.foreign || packet.topic === '') return bytes;
    const known = this.aliases.get(packet.topic);
    if (known !== undefined) return encodePacket({ ...packet, topic: '', properties: { ...packet.properties, topicAlias: known } }, 5);
    if (this.aliases.size >= this.maximum) return bytes;
    const alias = this.aliases.size + 1;
    const setting = encodePacket({ ...packet, properties: { ...packet.properties, topicAlias: alias } }, 5);
    // [MQTT-3.1.2-24] never past the client's Maximum Packet Size: then the topic goes unaliased
    if (this.maximumPacketSize !== undefined && setting.length > this.maximumPacketSize) return bytes;
    this.aliases.set(packet.topic, alias);
    return setting;
  }
}
