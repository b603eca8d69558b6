/**
 * What one packet batch sends: bytes per connection, in order, and connections to close.
 * Flushed once at the end of the batch: one @connections call per connection instead of one
 * per packet. Other connections are flushed before the sender's own, so an acknowledgement
 * never goes out ahead of the deliveries it confirms.
 */
import { forEachBounded } from './concurrency';
import type { ConnectionGateway, Logger } from './ports';

interface Pending {
  chunks: Buffer[];
  close: boolean;
}

const MAX_PARALLEL_DELIVERIES = 32;

export class Outbox {
  private readonly pending = new Map<string, Pending>();

  send(connectionId: string, bytes: Buffer): void {
    this.entry(connectionId).chunks.push(bytes);
  }

  close(connectionId: string): void {
    this.entry(connectionId).close = true;
  }

  isClosing(connectionId: string): boolean {
    return this.pending.get(connectionId)?.close ?? false;
  }

  /** Connections found gone while flushing. */
  async flush(gateway: ConnectionGateway, log: Logger, selfConnectionId?: string): Promise<string[]> {
    const gone: string[] = [];
    const deliver = async (connectionId: string, entry: Pending): Promise<void> => {
      try {
        if (entry.chunks.length > 0) {
          const result = await gateway.send(connectionId, Buffer.concat(entry.chunks));
          if (result === 'gone') {
            gone.push(connectionId);
            return;
          }
        }
        if (entry.close) await gateway.close(connectionId);
      } catch (error) {
        // One unreachable connection must not stop delivery to the others.
        log.warn('delivery failed', { connectionId, error: String(error) });
      }
    };
    const others = [...this.pending].filter(([id]) => id !== selfConnectionId);
    await forEachBounded(others, MAX_PARALLEL_DELIVERIES, ([id, entry]) => deliver(id, entry));
    const own = selfConnectionId === undefined ? undefined : this.pending.get(selfConnectionId);
    if (own) await deliver(selfConnectionId!, own);
    this.pending.clear();
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
