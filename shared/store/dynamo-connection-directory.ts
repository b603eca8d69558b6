/**
 * The sweeper's view of the Connections table (see tables.ts, OWNER_INDEX): connections by owner,
 * the listener task registry, and the sweeper's lease. Scheduled jobs and the listener's heartbeat
 * only; no client packet ever reads it.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionDirectory, ListenerTask, OwnedConnection, SweepState } from '../broker/ports';
import { CapacityMeter } from './capacity-meter';
import { browserOwners, SWEEPER_ITEM_ID, taskItemId, taskOwners, TASKS_OWNER } from './connection-owners';
import { DynamoTable } from './dynamo-table';
import { OWNER_INDEX } from './tables';

export interface DynamoConnectionDirectoryOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly meter?: CapacityMeter;
}

/** A task item no heartbeat refreshed for this long is deleted by TTL, whatever the sweeper does. */
const TASK_ITEM_TTL_SECONDS = 86_400;

export class DynamoConnectionDirectory implements ConnectionDirectory {
  readonly meter: CapacityMeter;
  private readonly table: DynamoTable;

  constructor(options: DynamoConnectionDirectoryOptions) {
    this.meter = options.meter ?? new CapacityMeter();
    this.table = new DynamoTable(options.client, options.tableName, this.meter);
  }

  async recordHeartbeat(endpoint: string, now: number): Promise<void> {
    await this.table.put({
      Item: { connectionId: taskItemId(endpoint), owner: TASKS_OWNER, endpoint, heartbeatAt: now, expiresAt: Math.ceil(now / 1000) + TASK_ITEM_TTL_SECONDS },
    });
  }

  async listTasks(): Promise<ListenerTask[]> {
    const items = await this.table.queryAll({
      IndexName: OWNER_INDEX,
      KeyConditionExpression: '#owner = :o',
      ExpressionAttributeNames: { '#owner': 'owner' },
      ExpressionAttributeValues: { ':o': TASKS_OWNER },
    });
    return items.map((item) => ({ endpoint: String(item.endpoint), heartbeatAt: Number(item.heartbeatAt) }));
  }

  async forgetTask(endpoint: string): Promise<void> {
    await this.table.delete({ Key: { connectionId: taskItemId(endpoint) } });
  }

  browserOwners(): string[] {
    return browserOwners();
  }

  taskOwners(endpoint: string): string[] {
    return taskOwners(endpoint);
  }

  async owned(owner: string, after: string | undefined, limit: number): Promise<OwnedConnection[]> {
    const items = await this.table.queryAll(
      {
        IndexName: OWNER_INDEX,
        KeyConditionExpression: after === undefined ? '#owner = :o' : '#owner = :o AND connectionId > :after',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':o': owner, ...(after === undefined ? {} : { ':after': after }) },
      },
      limit,
    );
    return items.map((item) => ({
      connectionId: String(item.connectionId),
      clientId: String(item.clientId),
      protocolVersion: item.protocolVersion as OwnedConnection['protocolVersion'],
      ...(typeof item.keepalive === 'number' ? { keepalive: item.keepalive } : {}),
      ...(typeof item.tokenExpiresAt === 'number' ? { tokenExpiresAt: item.tokenExpiresAt } : {}),
    }));
  }

  async claimSweep(holder: string, now: number, leaseMs: number): Promise<SweepState | undefined> {
    const claimed = await this.table.updateIf({
      Key: { connectionId: SWEEPER_ITEM_ID },
      UpdateExpression: 'SET holder = :h, leaseUntil = :until',
      ConditionExpression: 'attribute_not_exists(leaseUntil) OR leaseUntil < :now',
      ExpressionAttributeValues: { ':h': holder, ':until': now + leaseMs, ':now': now },
      ReturnValues: 'ALL_NEW',
    });
    if (!claimed) return undefined;
    const state = claimed.attributes?.state;
    return typeof state === 'object' && state !== null ? (state as SweepState) : {};
  }

  async releaseSweep(holder: string, state: SweepState): Promise<void> {
    // A sweep that outlived its lease lets go of nothing another holds now.
    await this.table.updateIf({
      Key: { connectionId: SWEEPER_ITEM_ID },
      UpdateExpression: 'SET #state = :s REMOVE leaseUntil, holder',
      ConditionExpression: 'holder = :h',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':s': state, ':h': holder },
    });
  }
}
