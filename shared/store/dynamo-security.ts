/**
 * Security state in DynamoDB (the Security table, see tables.ts): users, identities established
 * by API Gateway's `$connect`, and windowed counters for the rate limits. Every call reports its
 * consumed capacity to the meter. The admin methods (put, delete, list users) serve the users CLI.
 */
import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DoorIdentity, SecurityStore, UserRecord } from '../broker/ports';
import { CapacityMeter } from './capacity-meter';

const USER = 'user#';
const DOOR = 'door#';
const RATE = 'rate#';
const CAPACITY = 'TOTAL' as const;

type Item = Record<string, unknown>;

export interface DynamoSecurityStoreOptions {
  readonly client: DynamoDBDocumentClient;
  /** The Security table's name. */
  readonly table: string;
  readonly meter?: CapacityMeter;
  readonly now?: () => number;
}

export class DynamoSecurityStore implements SecurityStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  readonly meter: CapacityMeter;
  private readonly now: () => number;

  constructor(options: DynamoSecurityStoreOptions) {
    this.client = options.client;
    this.table = options.table;
    this.meter = options.meter ?? new CapacityMeter();
    this.now = options.now ?? Date.now;
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: USER + username }, ConsistentRead: true, ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('read', out.ConsumedCapacity);
    return out.Item ? toUser(out.Item) : undefined;
  }

  async putDoorIdentity(connectionId: string, identity: DoorIdentity, expiresAtSeconds: number): Promise<void> {
    const out = await this.client.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: DOOR + connectionId, username: identity.username, ...(identity.acl ? { acl: [...identity.acl] } : {}), expiresAt: expiresAtSeconds },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
  }

  async takeDoorIdentity(connectionId: string): Promise<DoorIdentity | undefined> {
    const out = await this.client.send(
      new DeleteCommand({ TableName: this.table, Key: { pk: DOOR + connectionId }, ReturnValues: 'ALL_OLD', ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    const item = out.Attributes;
    // TTL deletes late: an expired identity is no identity.
    if (!item || Number(item.expiresAt) * 1000 <= this.now()) return undefined;
    return { username: item.username as string, ...(Array.isArray(item.acl) ? { acl: item.acl as string[] } : {}) };
  }

  async countInWindow(key: string, windowStart: number, windowSeconds: number, amount: number): Promise<number> {
    const out = await this.client.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: `${RATE}${key}#${windowStart}` },
        UpdateExpression: 'ADD #n :a SET expiresAt = if_not_exists(expiresAt, :e)',
        ExpressionAttributeNames: { '#n': 'count' },
        ExpressionAttributeValues: { ':a': amount, ':e': windowStart + windowSeconds + 60 },
        ReturnValues: 'UPDATED_NEW',
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    return Number(out.Attributes?.count ?? amount);
  }

  // ---- administration (the users CLI) ----

  async putUser(user: UserRecord): Promise<void> {
    const out = await this.client.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: USER + user.username, username: user.username, passwordHash: user.passwordHash, ...(user.acl ? { acl: [...user.acl] } : {}) },
        ReturnConsumedCapacity: CAPACITY,
      }),
    );
    this.meter.record('write', out.ConsumedCapacity);
  }

  /** False if there was no such user. */
  async deleteUser(username: string): Promise<boolean> {
    const out = await this.client.send(
      new DeleteCommand({ TableName: this.table, Key: { pk: USER + username }, ReturnValues: 'ALL_OLD', ReturnConsumedCapacity: CAPACITY }),
    );
    this.meter.record('write', out.ConsumedCapacity);
    return out.Attributes !== undefined;
  }

  /** A Scan: for the administrator's CLI only, never on a path a client packet triggers. */
  async listUsers(): Promise<UserRecord[]> {
    const users: UserRecord[] = [];
    let start: Item | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'begins_with(pk, :u)',
          ExpressionAttributeValues: { ':u': USER },
          ExclusiveStartKey: start,
          ReturnConsumedCapacity: CAPACITY,
        }),
      );
      this.meter.record('read', out.ConsumedCapacity);
      users.push(...(out.Items ?? []).map(toUser));
      start = out.LastEvaluatedKey;
    } while (start);
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
