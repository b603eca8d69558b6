/**
 * Security state in DynamoDB (the Security table, see tables.ts): users, identities established
 * by API Gateway's `$connect`, and windowed counters for the rate limits. Every call reports its
 * consumed capacity to the meter. The admin methods (put, delete, list users) serve the users CLI.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DoorIdentity, SecurityStore, UserRecord } from '../broker/ports';
import { CapacityMeter } from './capacity-meter';
import { DynamoTable, type Item } from './dynamo-table';
import { rateCountUpdate, rateItemKey } from './rate-items';

const USER = 'user#';
const DOOR = 'door#';

export interface DynamoSecurityStoreOptions {
  readonly client: DynamoDBDocumentClient;
  /** The Security table's name. */
  readonly table: string;
  readonly meter?: CapacityMeter;
  readonly now?: () => number;
}

export class DynamoSecurityStore implements SecurityStore {
  private readonly table: DynamoTable;
  readonly meter: CapacityMeter;
  private readonly now: () => number;

  constructor(options: DynamoSecurityStoreOptions) {
    this.meter = options.meter ?? new CapacityMeter();
    this.table = new DynamoTable(options.client, options.table, this.meter);
    this.now = options.now ?? Date.now;
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    const item = await this.table.get({ pk: USER + username });
    return item ? toUser(item) : undefined;
  }

  async putDoorIdentity(connectionId: string, identity: DoorIdentity, expiresAtSeconds: number): Promise<void> {
    await this.table.put({
      Item: {
        pk: DOOR + connectionId,
        username: identity.username,
        ...(identity.acl ? { acl: [...identity.acl] } : {}),
        ...(identity.tokenExpiresAt !== undefined ? { tokenExpiresAt: identity.tokenExpiresAt } : {}),
        expiresAt: expiresAtSeconds,
      },
    });
  }

  async takeDoorIdentity(connectionId: string): Promise<DoorIdentity | undefined> {
    const item = await this.table.delete({ Key: { pk: DOOR + connectionId }, ReturnValues: 'ALL_OLD' });
    // TTL deletes late: an expired identity is no identity.
    if (!item || Number(item.expiresAt) * 1000 <= this.now()) return undefined;
    return {
      username: item.username as string,
      ...(Array.isArray(item.acl) ? { acl: item.acl as string[] } : {}),
      ...(typeof item.tokenExpiresAt === 'number' ? { tokenExpiresAt: item.tokenExpiresAt } : {}),
    };
  }

  async countInWindow(key: string, windowStart: number, windowSeconds: number, amount: number): Promise<number> {
    const counted = await this.table.update({ ...rateCountUpdate(key, windowStart, windowSeconds, amount), ReturnValues: 'UPDATED_NEW' });
    return Number(counted?.count ?? amount);
  }

  async readWindow(key: string, windowStart: number): Promise<number> {
    const item = await this.table.get(rateItemKey(key, windowStart));
    return Number(item?.count ?? 0);
  }

  // Administration (the users CLI)

  async putUser(user: UserRecord): Promise<void> {
    await this.table.put({
      Item: { pk: USER + user.username, username: user.username, passwordHash: user.passwordHash, ...(user.acl ? { acl: [...user.acl] } : {}) },
    });
  }

  /** False if there was no such user. */
  async deleteUser(username: string): Promise<boolean> {
    return (await this.table.delete({ Key: { pk: USER + username }, ReturnValues: 'ALL_OLD' })) !== undefined;
  }

  /** A Scan: for the administrator's CLI only, never on a path a client packet triggers. */
  async listUsers(): Promise<UserRecord[]> {
    const users: UserRecord[] = [];
    for await (const items of this.table.scan({ FilterExpression: 'begins_with(pk, :u)', ExpressionAttributeValues: { ':u': USER } })) {
      users.push(...items.map(toUser));
    }
    return users.sort((a, b) => a.username.localeCompare(b.username));
  }
}

function toUser(item: Item): UserRecord {
  return {
    username: item.username as string,
    passwordHash: item.passwordHash as string,
    ...(Array.isArray(item.acl) ? { acl: item.acl as string[] } : {}),
  };
}
