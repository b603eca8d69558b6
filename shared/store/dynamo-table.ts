/**
 * One DynamoDB table, metered: the only place in shared/store that sends commands to the
 * DynamoDB document client. Every call records its consumed capacity in the CapacityMeter; a
 * failed condition is translated here, by class, into an answer (the condition did not hold)
 * rather than an error. What DynamoDB cannot serve at all reaches the adapters already translated
 * into StoreUnavailableError by the client's middleware (store-errors.ts).
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DeleteCommandInput,
  type DynamoDBDocumentClient,
  type PutCommandInput,
  type QueryCommandInput,
  type ScanCommandInput,
  type TransactWriteCommandInput,
  type TransactWriteConditionCheck,
  type TransactWriteDelete,
  type TransactWritePut,
  type TransactWriteUpdate,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { StoreUnavailableError } from '../broker/ports';
import type { CapacityMeter } from './capacity-meter';
import { TransactionCombiner, type Outcome, type Sent } from './combined-transactions';

export type Item = Record<string, unknown>;

type Input<T> = Omit<T, 'TableName' | 'ReturnConsumedCapacity'>;
export type PutInput = Input<PutCommandInput>;
export type UpdateInput = Input<UpdateCommandInput>;
export type DeleteInput = Input<DeleteCommandInput>;
export type QueryInput = Input<QueryCommandInput>;
export type ScanInput = Input<ScanCommandInput>;

/** A conditional write whose condition held: the attributes it asked to have returned, if any. */
export interface Written {
  readonly attributes?: Item;
}

/** One item of a transaction on this table (the table's name is filled in, unless the item names another table). */
export type TransactItem =
  | { readonly Put: Omit<TransactWritePut, 'TableName'> & { TableName?: string } }
  | { readonly Update: Omit<TransactWriteUpdate, 'TableName'> & { TableName?: string } }
  | { readonly Delete: Omit<TransactWriteDelete, 'TableName'> & { TableName?: string } }
  | { readonly ConditionCheck: Omit<TransactWriteConditionCheck, 'TableName'> & { TableName?: string } };

/** An item of a TransactWriteItems as sent, its table named. */
type WriteItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** A transaction's outcome: written, or which items' conditions failed (in the order given). */
export type TransactOutcome = Outcome;

export type BatchWriteRequest = { PutRequest: { Item: Item } } | { DeleteRequest: { Key: Item } };

const CAPACITY = 'TOTAL' as const;
const BATCH_GET_LIMIT = 100;
const BATCH_WRITE_LIMIT = 25;
/** BatchWriteItem calls of one batch write in flight at once. */
const PARALLEL_BATCHES = 8;
/** Attempts of a transaction that keeps losing to concurrent ones before the store reports itself busy. */
const MAX_CONTENDED_ATTEMPTS = 30;

export class DynamoTable {
  /** Groups the transactions sent with transactCombined; made on first use. */
  private combiner: TransactionCombiner<WriteItem> | undefined;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    readonly name: string,
    readonly meter: CapacityMeter,
  ) {}

  /** The item as it is now (strongly consistent). */
  async get(key: Item): Promise<Item | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.name, Key: key, ConsistentRead: true, ReturnConsumedCapacity: CAPACITY }));
    this.meter.record('read', out.ConsumedCapacity);
    return out.Item;
  }

  /** A put without a condition; the attributes it asked to have returned (ReturnValues), if any. */
  async put(input: PutInput): Promise<Item | undefined> {
    const out = await this.client.send(new PutCommand({ ...input, TableName: this.name, ReturnConsumedCapacity: CAPACITY }));
    this.meter.record('write', out.ConsumedCapacity);
    return out.Attributes;
  }

  /** An update without a condition; the attributes it asked to have returned (ReturnValues), if any. */
  async update(input: UpdateInput): Promise<Item | undefined> {
    const out = await this.client.send(new UpdateCommand({ ...input, TableName: this.name, ReturnConsumedCapacity: CAPACITY }));
    this.meter.record('write', out.ConsumedCapacity);
    return out.Attributes;
  }

  /** A delete without a condition; the attributes it asked to have returned (ReturnValues), if any. */
  async delete(input: DeleteInput): Promise<Item | undefined> {
    const out = await this.client.send(new DeleteCommand({ ...input, TableName: this.name, ReturnConsumedCapacity: CAPACITY }));
    this.meter.record('write', out.ConsumedCapacity);
    return out.Attributes;
  }

  /** A conditional put: undefined when its condition failed. */
  putIf(input: PutInput & { ConditionExpression: string }): Promise<Written | undefined> {
    return this.unlessConditionFails(() => this.client.send(new PutCommand({ ...input, TableName: this.name, ReturnConsumedCapacity: CAPACITY })));
  }

  /** A conditional update: undefined when its condition failed. */
  updateIf(input: UpdateInput & { ConditionExpression: string }): Promise<Written | undefined> {
    return this.unlessConditionFails(() => this.client.send(new UpdateCommand({ ...input, TableName: this.name, ReturnConsumedCapacity: CAPACITY })));
  }

  /**
   * A conditional update that, when its condition fails, says why: the item as it was
   * (ReturnValuesOnConditionCheckFailure ALL_OLD; `old` absent when there was no item). Numbers
   * and strings of the old item only: what a condition is made of.
   */
  async updateOrOld(input: UpdateInput & { ConditionExpression: string }): Promise<{ ok: true; attributes?: Item } | { ok: false; old?: Item }> {
    try {
      const out = await this.client.send(
        new UpdateCommand({ ...input, TableName: this.name, ReturnConsumedCapacity: CAPACITY, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }),
      );
      this.meter.record('write', out.ConsumedCapacity);
      return out.Attributes ? { ok: true, attributes: out.Attributes } : { ok: true };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      this.meter.recordFailedWrite();
      return error.Item ? { ok: false, old: scalars(error.Item) } : { ok: false };
    }
  }

  /** A conditional delete: undefined when its condition failed. */
  deleteIf(input: DeleteInput & { ConditionExpression: string }): Promise<Written | undefined> {
    return this.unlessConditionFails(() => this.client.send(new DeleteCommand({ ...input, TableName: this.name, ReturnConsumedCapacity: CAPACITY })));
  }

  /** One page of a Query: strongly consistent on the table (an index never is). */
  async query(input: QueryInput): Promise<Item[]> {
    const out = await this.client.send(new QueryCommand(this.queryInput(input)));
    this.meter.record('read', out.ConsumedCapacity);
    return out.Items ?? [];
  }

  /** Every page of a Query, strongly consistent on the table; at most `max` items when given. */
  async queryAll(input: QueryInput, max = Infinity): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const limit = Number.isFinite(max) ? { Limit: max - items.length } : {};
      const out = await this.client.send(new QueryCommand({ ...this.queryInput(input), ...limit, ExclusiveStartKey: start }));
      this.meter.record('read', out.ConsumedCapacity);
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start && items.length < max);
    return items;
  }

  /** How many items a Query finds (one page, strongly consistent). */
  async count(input: QueryInput): Promise<number> {
    const out = await this.client.send(new QueryCommand({ ...this.queryInput(input), Select: 'COUNT' }));
    this.meter.record('read', out.ConsumedCapacity);
    return out.Count ?? 0;
  }

  /** A Scan, page by page: scheduled jobs and administration only, never a path a client packet triggers. */
  async *scan(input: ScanInput = {}): AsyncIterable<Item[]> {
    let start: Item | undefined;
    do {
      const out = await this.client.send(new ScanCommand({ ...input, TableName: this.name, ExclusiveStartKey: start, ReturnConsumedCapacity: CAPACITY }));
      this.meter.record('read', out.ConsumedCapacity);
      yield out.Items ?? [];
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /** The items of these keys that exist (strongly consistent): 100 keys per call, unprocessed keys retried. */
  async batchGet(keys: readonly Item[]): Promise<Item[]> {
    const items: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_LIMIT) {
      let pending: Item[] | undefined = keys.slice(i, i + BATCH_GET_LIMIT);
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const out = await this.client.send(
          new BatchGetCommand({ RequestItems: { [this.name]: { Keys: pending, ConsistentRead: true } }, ReturnConsumedCapacity: CAPACITY }),
        );
        this.meter.record('read', out.ConsumedCapacity);
        items.push(...(out.Responses?.[this.name] ?? []));
        pending = out.UnprocessedKeys?.[this.name]?.Keys as Item[] | undefined;
      }
    }
    return items;
  }

  /** Puts and deletes without conditions: 25 per call, a few calls at once, unprocessed items retried. */
  async batchWrite(requests: readonly BatchWriteRequest[]): Promise<void> {
    const chunks: BatchWriteRequest[][] = [];
    for (let i = 0; i < requests.length; i += BATCH_WRITE_LIMIT) chunks.push(requests.slice(i, i + BATCH_WRITE_LIMIT));
    await forEachBounded(chunks, PARALLEL_BATCHES, async (chunk) => {
      let pending: BatchWriteRequest[] | undefined = chunk;
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const out = await this.client.send(new BatchWriteCommand({ RequestItems: { [this.name]: pending }, ReturnConsumedCapacity: CAPACITY }));
        this.meter.record('write', out.ConsumedCapacity);
        pending = out.UnprocessedItems?.[this.name] as BatchWriteRequest[] | undefined;
      }
    });
  }

  async batchDelete(keys: readonly Item[]): Promise<void> {
    await this.batchWrite(keys.map((Key) => ({ DeleteRequest: { Key } })));
  }

  /**
   * A TransactWriteItems on this table (at most 100 items), metered from its items' sizes (see
   * CapacityMeter.recordTransaction). Retried, within bounds, while it only collides with
   * concurrent transactions; when a condition fails, which items' conditions failed.
   */
  transact(items: readonly TransactItem[]): Promise<TransactOutcome> {
    return this.transactNamed(this.named(items));
  }

  private async transactNamed(transactItems: readonly WriteItem[]): Promise<TransactOutcome> {
    for (let attempt = 0; ; attempt++) {
      const sent = await this.sendTransaction(transactItems);
      if (sent.ok) return sent;
      const failed = sent.reasons.map((reason) => reason.Code === 'ConditionalCheckFailed');
      if (failed.some(Boolean) || !sent.reasons.some((reason) => reason.Code === 'TransactionConflict')) return { ok: false, failed };
      await afterContention(attempt);
    }
  }

  /**
   * The same transaction, sent in one TransactWriteItems with others made at about the same time
   * when it can be (combined-transactions.ts), with the same outcome as alone; `keys` name every
   * item it touches, uniquely across the callers that use this.
   */
  transactCombined(items: readonly TransactItem[], keys: readonly string[]): Promise<TransactOutcome> {
    this.combiner ??= new TransactionCombiner({ send: (named) => this.sendTransaction(named), alone: (named) => this.transactNamed(named) });
    return this.combiner.submit(this.named(items), keys);
  }

  /** The items with this table's name wherever they name none. */
  private named(items: readonly TransactItem[]): WriteItem[] {
    return items.map((item) =>
      'Put' in item
        ? { Put: { TableName: this.name, ...item.Put } }
        : 'Update' in item
          ? { Update: { TableName: this.name, ...item.Update } }
          : 'Delete' in item
            ? { Delete: { TableName: this.name, ...item.Delete } }
            : { ConditionCheck: { TableName: this.name, ...item.ConditionCheck } },
    );
  }

  /** One TransactWriteItems, metered: written, or cancelled with a reason per item. */
  private async sendTransaction(transactItems: readonly WriteItem[]): Promise<Sent> {
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: [...transactItems] }));
      this.meter.recordTransaction(transactItems);
      return { ok: true };
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      this.meter.recordFailedWrite();
      return { ok: false, reasons: error.CancellationReasons ?? [] };
    }
  }

  private queryInput(input: QueryInput): QueryCommandInput {
    return { ...input, TableName: this.name, ConsistentRead: input.IndexName === undefined, ReturnConsumedCapacity: CAPACITY };
  }

  private async unlessConditionFails(send: () => Promise<{ Attributes?: Item; ConsumedCapacity?: unknown }>): Promise<Written | undefined> {
    try {
      const out = await send();
      this.meter.record('write', out.ConsumedCapacity as Parameters<CapacityMeter['record']>[1]);
      return out.Attributes ? { attributes: out.Attributes } : {};
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      this.meter.recordFailedWrite();
      return undefined;
    }
  }
}

/**
 * Work that lost to a concurrent transaction on the same items: wait a little (jittered) before
 * reading again; after too many attempts the store reports itself busy.
 */
export async function afterContention(attempt: number): Promise<void> {
  if (attempt >= MAX_CONTENDED_ATTEMPTS) throw new StoreUnavailableError('busy', `gave up after ${attempt} contended transactions`);
  await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** Math.min(attempt, 6))));
}

/** The numbers and strings of an item in DynamoDB's wire format (an error's item is not unmarshalled by the document client). */
function scalars(item: Record<string, { N?: string; S?: string }>): Item {
  const out: Item = {};
  for (const [name, value] of Object.entries(item)) {
    if (value.N !== undefined) out[name] = Number(value.N);
    else if (value.S !== undefined) out[name] = value.S;
  }
  return out;
}

function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * 2 ** attempt)));
}

/** Runs `task` over `items`, at most `limit` at a time. */
async function forEachBounded<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
