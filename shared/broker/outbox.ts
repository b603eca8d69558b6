/**
 * The dispatcher's buffer: bytes per connection, in order, and connections to close. Flushed
 * once at the end of the batch: one @connections call per connection instead of one per packet.
 * Other connections are flushed before the senders' own, so an acknowledgement never goes out
 * ahead of the deliveries it confirms. A drain sends one connection's bytes at once (sendNow).
 *
 * PUBLISH packets to the API Gateway door are encoded at flush, where topic aliases are chosen
 * (5.0, within the client's Topic Alias Maximum); the listener's door chooses its own
 * (shared/listener/outgoing-aliases.ts), on first use. An alias is set, with its topic, by the first packet that uses it in a
 * flush and only reused later in that same flush: one flush is one @connections call, delivered
 * as one unbroken piece, so another handler's packets can never come between the two and a
 * client never sees an alias it was not told first. No alias state lives between flushes.
 */
import { encodePacket, type PublishPacket } from '../protocol/codec';
import type { Send } from './actions';
import { forEachBounded } from '../util/concurrency';
import type { ConnectionGateway, DeliveryResult, Logger } from './ports';

interface PendingPublish {
  readonly packet: PublishPacket;
  readonly topicAliasMaximum: number;
}

interface Pending {
  chunks: Array<Buffer | PendingPublish>;
  close: boolean;
}

const MAX_PARALLEL_DELIVERIES = 32;

export class Outbox {
  private readonly pending = new Map<string, Pending>();
  private readonly gone = new Set<string>();

  /** `doorAliases`: the connection's door chooses its outgoing topic aliases itself (the listener). */
  constructor(private readonly doorAliases: (connectionId: string) => boolean = () => false) {}

  /**
   * A packet, after what is pending to its connection. A 5.0 PUBLISH may travel with a topic
   * alias, chosen at flush, unless its door chooses them.
   */
  add({ connectionId, version, packet, topicAliasMaximum }: Send): void {
    const chunks = this.entry(connectionId).chunks;
    const aliased = packet.cmd === 'publish' && version === 5 && (topicAliasMaximum ?? 0) > 0 && !this.doorAliases(connectionId);
    if (aliased) chunks.push({ packet, topicAliasMaximum: topicAliasMaximum! });
    else chunks.push(encodePacket(packet, version));
  }

  close(connectionId: string): void {
    this.entry(connectionId).close = true;
  }

  isClosing(connectionId: string): boolean {
    return this.pending.get(connectionId)?.close ?? false;
  }

  /**
   * Send what is pending to one connection now (its close stays pending), ahead of the flush at
   * the end of the batch; a connection found gone is reported by that flush.
   */
  async sendNow(gateway: ConnectionGateway, connectionId: string): Promise<void> {
    const entry = this.pending.get(connectionId);
    if (!entry || entry.chunks.length === 0) return;
    const chunks = entry.chunks.splice(0);
    if ((await gateway.send(connectionId, encodeChunks(chunks))) === 'gone') this.gone.add(connectionId);
  }

  /**
   * Connections found gone while flushing. The bytes of connections other than `selves` go first
   * (one request per listener task), then those of `selves` (the connections whose packets were
   * handled: their acknowledgements), again one request per listener task, then the closes.
   */
  async flush(gateway: ConnectionGateway, log: Logger, selves: readonly string[] = []): Promise<string[]> {
    const gone: string[] = [...this.gone];
    this.gone.clear();
    const own = new Set(selves);
    const sendAll = async (entries: ReadonlyArray<readonly [string, Pending]>): Promise<Map<string, DeliveryResult>> => {
      const writes = entries.filter(([, entry]) => entry.chunks.length > 0).map(([id, entry]) => [id, encodeChunks(entry.chunks)] as const);
      const results = writes.length > 0 ? await gateway.sendMany(writes) : new Map<string, DeliveryResult>();
      for (const [id] of writes) {
        const result = results.get(id);
        if (result === 'gone') gone.push(id);
        // One unreachable connection must not stop delivery to the others.
        else if (result === undefined) log.warn('delivery failed', { connectionId: id });
      }
      return results;
    };
    const closeAll = (entries: ReadonlyArray<readonly [string, Pending]>, results: ReadonlyMap<string, DeliveryResult>): Promise<void> =>
      forEachBounded(
        entries.filter(([id, entry]) => entry.close && results.get(id) !== 'gone'),
        MAX_PARALLEL_DELIVERIES,
        async ([id]) => {
          try {
            await gateway.close(id);
          } catch (error) {
            log.warn('delivery failed', { connectionId: id, error: String(error) });
          }
        },
      );
    const others = [...this.pending].filter(([id]) => !own.has(id));
    const mine = [...this.pending].filter(([id]) => own.has(id));
    this.pending.clear();
    // Bytes to the others in as few requests as the doors allow, then their closes.
    await closeAll(others, await sendAll(others));
    if (mine.length > 0) await closeAll(mine, await sendAll(mine));
    return gone;
  }

  private entry(connectionId: string): Pending {
    let entry = this.pending.get(connectionId);
    if (!entry) {
      entry = { chunks: [], close: false };
      this.pending.set(connectionId, entry);
    }
    return entry;
  }
}

function encodeChunks(chunks: ReadonlyArray<Buffer | PendingPublish>): Buffer {
  const aliases = new Map<string, number>();
  // An alias only pays when its topic comes again in this flush.
  const uses = new Map<string, number>();
  for (const chunk of chunks) if (!Buffer.isBuffer(chunk)) uses.set(chunk.packet.topic, (uses.get(chunk.packet.topic) ?? 0) + 1);
  return Buffer.concat(
    chunks.map((chunk) => {
      if (Buffer.isBuffer(chunk)) return chunk;
      const { packet, topicAliasMaximum } = chunk;
      const known = aliases.get(packet.topic);
      if (known !== undefined) {
        // a known alias with a zero-length topic name stands for the topic
        return encodePacket({ ...packet, topic: '', properties: { ...packet.properties, topicAlias: known } }, 5);
      }
      if (aliases.size >= topicAliasMaximum || uses.get(packet.topic)! < 2) return encodePacket(packet, 5);
      // [MQTT-3.3.2-11] the broker's aliases stay within the client's Topic Alias Maximum
      const alias = aliases.size + 1;
      aliases.set(packet.topic, alias);
      return encodePacket({ ...packet, properties: { ...packet.properties, topicAlias: alias } }, 5);
    }),
  );
}
