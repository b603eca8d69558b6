/**
 * Delayed wills in DynamoDB: one `will` item in the client's session partition, on the timer
 * index (`timer = "will#<shard>"`, `timerAt` = when it is due) so the timers find it when due.
 */
import type { DueWill, WillMessage, WillStore } from '../broker/ports';
import type { DynamoTable, Item } from './dynamo-table';
import { toItemMessage, toWill } from './message-items';
import { dueTimers, sessionKey, timerKey, WILL_SK } from './session-items';

export class DynamoWillStore implements WillStore {
  constructor(private readonly table: DynamoTable) {}

  async scheduleWill(clientId: string, will: WillMessage, dueAt: number): Promise<boolean> {
    // Only while no connection holds the session: a client that reconnected between its old
    // connection's close and this write has cancelled the will already [MQTT-3.1.3-9].
    const written = await this.table.transact([
      { ConditionCheck: { Key: sessionKey(clientId), ConditionExpression: 'attribute_exists(clientId) AND attribute_not_exists(connectionId)' } },
      { Put: { Item: { clientId, sk: WILL_SK, will: toItemMessage(will), timer: timerKey('will', clientId), timerAt: dueAt } } },
    ]);
    return written.ok;
  }

  async cancelWill(clientId: string): Promise<void> {
    await this.table.delete({ Key: { clientId, sk: WILL_SK }, ReturnValues: 'ALL_OLD' });
  }

  async claimDueWills(now: number, limit: number, leaseMs: number): Promise<DueWill[]> {
    const due = await dueTimers(this.table, 'will', now, limit);
    const wills: DueWill[] = [];
    for (const item of due) {
      // Claimed for a lease, not deleted: a publisher that dies leaves it for the next run.
      const claimed = await this.table.updateIf({
        Key: { clientId: item.clientId as string, sk: WILL_SK },
        UpdateExpression: 'SET claimedAt = :now',
        ConditionExpression: 'timerAt <= :now AND (attribute_not_exists(claimedAt) OR claimedAt < :stale)',
        ExpressionAttributeValues: { ':now': now, ':stale': now - leaseMs },
        ReturnValues: 'ALL_NEW',
      });
      if (claimed?.attributes) wills.push(dueWill(claimed.attributes));
    }
    return wills;
  }

  async completeWill(clientId: string, id: string): Promise<void> {
    // Only the will that was published: the client may have scheduled a new one since.
    await this.table.deleteIf({
      Key: { clientId, sk: WILL_SK },
      ConditionExpression: 'attribute_exists(sk) AND timerAt = :t',
      ExpressionAttributeValues: { ':t': Number(id) },
      ReturnValues: 'ALL_OLD',
    });
  }

  /**
   * The session ends: its pending will is removed and returned, to publish now. With `unclaimedSince`,
   * only if no publisher claimed it since then (claimDueWills may have it already).
   */
  async takeWill(clientId: string, unclaimedSince?: number): Promise<DueWill | undefined> {
    const taken = await this.table.deleteIf({
      Key: { clientId, sk: WILL_SK },
      ConditionExpression: unclaimedSince === undefined ? 'attribute_exists(sk)' : 'attribute_exists(sk) AND (attribute_not_exists(claimedAt) OR claimedAt < :stale)',
      ...(unclaimedSince === undefined ? {} : { ExpressionAttributeValues: { ':stale': unclaimedSince } }),
      ReturnValues: 'ALL_OLD',
    });
    return taken?.attributes ? dueWill(taken.attributes) : undefined;
  }
}

function dueWill(item: Item): DueWill {
  return { clientId: item.clientId as string, will: toWill(item.will as Item), id: String(item.timerAt) };
}
