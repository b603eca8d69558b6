/**
 * The acknowledgements of QoS 1/2 deliveries (PUBACK, PUBCOMP) in DynamoDB: those of one client
 * that arrive together (a run of PUBACKs handled concurrently) are written together, their
 * in-flight records removed together (dynamo-deliveries.ts completeOutgoing, in-flight-blocks.ts).
 */
import type { DynamoTable } from './dynamo-table';
import { removeEntries } from './in-flight-blocks';
import { countsInFlight, sessionKey } from './session-items';

interface PendingCompletions {
  readonly clientId: string;
  readonly receiveMaximum: number;
  readonly packetIds: Set<number>;
  readonly waiters: Array<{ resolve: (result: { queued: boolean }) => void; reject: (error: unknown) => void }>;
}

export class Completions {
  private readonly pending = new Map<string, PendingCompletions>();

  constructor(private readonly table: DynamoTable) {}

  complete(clientId: string, packetId: number, receiveMaximum: number): Promise<{ queued: boolean }> {
    // Completions of one client that arrive together (a run of PUBACKs handled concurrently) are written together.
    const key = `${receiveMaximum}\u0000${clientId}`;
    let batch = this.pending.get(key);
    if (!batch) {
      const created: PendingCompletions = { clientId, receiveMaximum, packetIds: new Set(), waiters: [] };
      this.pending.set(key, created);
      setImmediate(() => {
        this.pending.delete(key);
        this.completeMany(created).then(
          (result) => created.waiters.forEach((waiter) => waiter.resolve(result)),
          (error: unknown) => created.waiters.forEach((waiter) => waiter.reject(error)),
        );
      });
      batch = created;
    }
    batch.packetIds.add(packetId);
    const waiting = batch;
    return new Promise((resolve, reject) => waiting.waiters.push({ resolve, reject }));
  }

  /**
   * PUBACKs/PUBCOMPs of one client, together: their records removed from their blocks (a block whose
   * records are all acknowledged deleted in one call, in-flight-blocks.ts removeEntries) and, when
   * the client's Receive Maximum is counted, the count lowered once by the number of records that
   * were there (an acknowledgement repeated in a later batch frees no second slot).
   */
  private async completeMany({ clientId, receiveMaximum, packetIds }: PendingCompletions): Promise<{ queued: boolean }> {
    const found = await removeEntries(this.table, clientId, packetIds);
    // Without a count in flight nothing waits for room: a queue only forms while the client is away.
    if (!countsInFlight(receiveMaximum) || found === 0) return { queued: false };
    const session = await this.table.updateIf({
      Key: sessionKey(clientId),
      UpdateExpression: 'ADD inflight :d',
      ConditionExpression: 'attribute_exists(clientId)',
      ExpressionAttributeValues: { ':d': -found },
      ReturnValues: 'ALL_NEW',
    });
    return { queued: Number(session?.attributes?.queued ?? 0) > 0 };
  }
}
