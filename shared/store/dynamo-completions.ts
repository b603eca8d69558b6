/**
 * The acknowledgements of QoS 1/2 deliveries (PUBACK, PUBCOMP) in DynamoDB: those of one client
 * that arrive together (a run of PUBACKs handled concurrently) are written together, their
 * in-flight records deleted in one batch (dynamo-deliveries.ts completeOutgoing).
 */
import type { DynamoTable } from './dynamo-table';
import { countsInFlight, outRecordKey, sessionKey } from './session-items';

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
   * PUBACKs/PUBCOMPs of one client, together: their `out#` records deleted (BatchWriteItem) and,
   * when the client's Receive Maximum is counted, the count lowered once by the number of records
   * that were there (read first, so an acknowledgement repeated in a later batch frees no second
   * slot; one alone is a delete that returns what it deleted).
   */
  private async completeMany({ clientId, receiveMaximum, packetIds }: PendingCompletions): Promise<{ queued: boolean }> {
    const keys = [...packetIds].map((id) => outRecordKey(clientId, id));
    // Without a count in flight nothing waits for room: a queue only forms while the client is away.
    if (!countsInFlight(receiveMaximum)) {
      await this.table.batchDelete(keys);
      return { queued: false };
    }
    let found: number;
    if (keys.length === 1) {
      found = (await this.table.delete({ Key: keys[0]!, ReturnValues: 'ALL_OLD' })) !== undefined ? 1 : 0;
    } else {
      const existing = await this.table.batchGet(keys);
      if (existing.length > 0) await this.table.batchDelete(existing.map((item) => outRecordKey(clientId, Number(item.packetId))));
      found = existing.length;
    }
    if (found === 0) return { queued: false };
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
