/**
 * The API Gateway door's inbound order in DynamoDB (the Inbox table, see tables.ts): per
 * connection one lease item (`next`, `holder`, `leaseUntil`, `pending`, `takenOver`) and the
 * messages parked until their turn. Every write that could race is conditional on the lease item, which
 * DynamoDB serializes; reads are strongly consistent.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionInbox, InboxLease, ParkedMessage, ReleaseOutcome } from '../broker/ports';
import type { ProtocolVersion } from '../protocol/codec';
import { FIRST_SEQUENCE } from '../gateway/sequence-prefix';
import { CapacityMeter } from './capacity-meter';
import { DynamoTable } from './dynamo-table';

const LEASE_SK = 'lease';
const PARKED_PREFIX = 'm#';
const SEQUENCE_DIGITS = 15;
/** A connection lives at most 2 hours on API Gateway; its inbox outlives it by one more. */
const KEEP_SECONDS = 3 * 60 * 60;
const NAMES = { '#holder': 'holder', '#until': 'leaseUntil', '#next': 'next', '#expires': 'expiresAt' };

export interface DynamoInboxOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly meter?: CapacityMeter;
  readonly now?: () => number;
}

export class DynamoConnectionInbox implements ConnectionInbox {
  private readonly table: DynamoTable;
  readonly meter: CapacityMeter;
  private readonly now: () => number;

  constructor(options: DynamoInboxOptions) {
    this.meter = options.meter ?? new CapacityMeter();
    this.table = new DynamoTable(options.client, options.tableName, this.meter);
    this.now = options.now ?? Date.now;
  }

  async acquire(connectionId: string, token: string, leaseMs: number, onlyIfNext?: number): Promise<InboxLease | undefined> {
    const free = '(attribute_not_exists(#holder) OR #until < :now)';
    // A connection's first message finds no lease item: `next` is then the first sequence number.
    const expecting =
      onlyIfNext === undefined ? '' : onlyIfNext === FIRST_SEQUENCE ? ' AND (attribute_not_exists(#next) OR #next = :n)' : ' AND #next = :n';
    const now = this.now();
    const taken = await this.table.updateIf({
      Key: { connectionId, sk: LEASE_SK },
      UpdateExpression: 'SET #holder = :t, #until = :until, #expires = :e, #next = if_not_exists(#next, :first)',
      ConditionExpression: free + expecting,
      ExpressionAttributeNames: NAMES,
      ExpressionAttributeValues: {
        ':t': token,
        ':until': now + leaseMs,
        ':now': now,
        ':e': this.expiresAt(),
        ':first': FIRST_SEQUENCE,
        ...(onlyIfNext === undefined ? {} : { ':n': onlyIfNext }),
      },
      ReturnValues: 'ALL_NEW',
    });
    return taken ? { token, next: Number(taken.attributes?.next) } : undefined;
  }

  async park(connectionId: string, sequence: number, body: string): Promise<void> {
    await this.table.put({ Item: { connectionId, sk: parkedKey(sequence), sequence, body, parkedAt: this.now(), expiresAt: this.expiresAt() } });
  }

  async parked(connectionId: string, from: number, limit: number): Promise<ParkedMessage[]> {
    const items = await this.table.query({
      KeyConditionExpression: 'connectionId = :c AND sk BETWEEN :from AND :last',
      ExpressionAttributeValues: { ':c': connectionId, ':from': parkedKey(from), ':last': PARKED_PREFIX + '9'.repeat(SEQUENCE_DIGITS) },
      Limit: limit,
    });
    return items.map((item) => ({ sequence: Number(item.sequence), body: String(item.body), parkedAt: Number(item.parkedAt) }));
  }

  async markPending(connectionId: string): Promise<boolean> {
    const marked = await this.table.updateIf({
      Key: { connectionId, sk: LEASE_SK },
      UpdateExpression: 'SET #pending = :yes',
      // Only while someone holds it: a holder lets go after reading (and clearing) the mark.
      ConditionExpression: 'attribute_exists(#holder) AND #until >= :now',
      ExpressionAttributeNames: { '#pending': 'pending', '#holder': 'holder', '#until': 'leaseUntil' },
      ExpressionAttributeValues: { ':yes': true, ':now': this.now() },
    });
    return marked !== undefined;
  }

  async advance(connectionId: string, token: string, next: number, leaseMs: number): Promise<boolean> {
    const advanced = await this.table.updateIf({
      Key: { connectionId, sk: LEASE_SK },
      UpdateExpression: 'SET #next = :n, #until = :until, #expires = :e',
      // Only the holder moves `next`: a holder whose lease ran out and was taken learns it here.
      ConditionExpression: '#holder = :t',
      ExpressionAttributeNames: NAMES,
      ExpressionAttributeValues: { ':n': next, ':until': this.now() + leaseMs, ':t': token, ':e': this.expiresAt() },
    });
    return advanced !== undefined;
  }

  async release(connectionId: string, token: string, next: number): Promise<ReleaseOutcome> {
    const released = await this.table.updateIf({
      Key: { connectionId, sk: LEASE_SK },
      // Letting go and reading the pending and takeover marks are one atomic step: a mark set before it is seen, once.
      UpdateExpression: 'SET #next = :n, #expires = :e REMOVE #holder, #until, #pending, #takenOver',
      ConditionExpression: '#holder = :t',
      ExpressionAttributeNames: { ...NAMES, '#pending': 'pending', '#takenOver': 'takenOver' },
      ExpressionAttributeValues: { ':n': next, ':t': token, ':e': this.expiresAt() },
      ReturnValues: 'ALL_OLD',
    });
    if (!released) return 'lost';
    const takenOver = released.attributes?.takenOver;
    if (takenOver !== undefined) return { takenOver: Number(takenOver) as ProtocolVersion };
    return released.attributes?.pending === true ? 'pending' : 'released';
  }

  async markTakenOver(connectionId: string, protocolVersion: ProtocolVersion): Promise<boolean> {
    const marked = await this.table.updateIf({
      Key: { connectionId, sk: LEASE_SK },
      UpdateExpression: 'SET #takenOver = :v',
      // Held, and the first message (the CONNECT) not yet handled: its holder lets go after the CONNACK went out.
      ConditionExpression: 'attribute_exists(#holder) AND #until >= :now AND #next = :first',
      ExpressionAttributeNames: { '#holder': 'holder', '#until': 'leaseUntil', '#next': 'next', '#takenOver': 'takenOver' },
      ExpressionAttributeValues: { ':v': protocolVersion, ':now': this.now(), ':first': FIRST_SEQUENCE },
    });
    return marked !== undefined;
  }

  async removeParked(connectionId: string, sequences: readonly number[]): Promise<void> {
    await this.table.batchDelete(sequences.map((sequence) => ({ connectionId, sk: parkedKey(sequence) })));
  }

  async forget(connectionId: string): Promise<void> {
    const keys = await this.table.queryAll({
      KeyConditionExpression: 'connectionId = :c',
      ExpressionAttributeValues: { ':c': connectionId },
      ProjectionExpression: 'connectionId, sk',
    });
    await this.table.batchDelete(keys);
  }

  private expiresAt(): number {
    return Math.ceil(this.now() / 1000) + KEEP_SECONDS;
  }
}

/** Zero-padded, so the sort key orders parked messages by sequence number. */
function parkedKey(sequence: number): string {
  return PARKED_PREFIX + String(sequence).padStart(SEQUENCE_DIGITS, '0');
}
