/**
 * DynamoDB's limits on the harness's DynamoDB client (local/aws-limits.ts), as middleware:
 * - per partition (table and partition key value, or index and its key value), the units
 *   consumed in the last second are counted (local/dynamodb-units.ts); a call to a partition that
 *   has used its second's read or write units fails with ProvisionedThroughputExceededException,
 *   thrown inside the SDK's retry loop, so the SDK retries it with backoff as it retries AWS's,
 *   and what still fails reaches shared/store/store-errors.ts as AWS's would; a write that passes
 *   takes one unit of each partition it writes at once (the rest when it has succeeded), so
 *   writes in flight together meet the limit as they would at DynamoDB;
 * - a BatchGetItem or BatchWriteItem returns the throttled keys as UnprocessedKeys /
 *   UnprocessedItems (the whole call is throttled only when every key is), and a BatchGetItem
 *   answers at most 16 MB;
 * - items over 400 KB, transactions over 100 items or 4 MB, batches over 100 keys or 25 writes
 *   are refused with ValidationException, as DynamoDB refuses them.
 */
import { DynamoDBServiceException, ProvisionedThroughputExceededException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DYNAMODB_BATCH_GET_BYTES,
  DYNAMODB_BATCH_GET_KEYS,
  DYNAMODB_BATCH_WRITE_ITEMS,
  DYNAMODB_ITEM_BYTES,
  DYNAMODB_TRANSACT_WRITE_BYTES,
  DYNAMODB_TRANSACT_WRITE_ITEMS,
  type AwsLimits,
} from './aws-limits';
import { itemSize, TableKeys, type Charge, type Item, type Touch } from './dynamodb-units';
import type { LimitMeter } from './meters';
import type { TableNames } from '../shared/store/tables';

export interface DynamoDbLimitOptions {
  readonly limits: AwsLimits;
  readonly tables: TableNames;
  readonly meter: LimitMeter;
  readonly now?: () => number;
}

const WINDOW_MS = 1000;
const BATCHES = new Set(['BatchGetItemCommand', 'BatchWriteItemCommand']);

/** Units consumed per partition over the last second. */
export class PartitionWindows {
  private readonly windows = new Map<string, { at: number[]; units: number[]; sum: number }>();
  private sweptAt = 0;

  constructor(private readonly now: () => number) {}

  used(key: string): number {
    const window = this.windows.get(key);
    if (!window) return 0;
    this.slide(key, window);
    return window.sum;
  }

  add(key: string, units: number): void {
    let window = this.windows.get(key);
    if (!window) this.windows.set(key, (window = { at: [], units: [], sum: 0 }));
    window.at.push(this.now());
    window.units.push(units);
    window.sum += units;
    // Partitions not touched again are dropped once a second, when there are many.
    if (this.windows.size > 10_000 && this.now() - this.sweptAt > WINDOW_MS) {
      this.sweptAt = this.now();
      for (const [other, w] of this.windows) this.slide(other, w);
    }
  }

  private slide(key: string, window: { at: number[]; units: number[]; sum: number }): void {
    const since = this.now() - WINDOW_MS;
    let drop = 0;
    while (drop < window.at.length && window.at[drop]! <= since) window.sum -= window.units[drop++]!;
    if (drop === 0) return;
    window.at.splice(0, drop);
    window.units.splice(0, drop);
    if (window.at.length === 0) this.windows.delete(key);
  }
}

/** Adds the limits to `client` (and the document clients built on it). */
export function enforceDynamoDbLimits(client: DynamoDBClient, options: DynamoDbLimitOptions): PartitionWindows {
  const keys = new TableKeys(options.tables);
  const windows = new PartitionWindows(options.now ?? Date.now);
  const { readUnitsPerSecond, writeUnitsPerSecond } = options.limits.dynamoDb;
  // Reads and writes have their own units: one window each per partition.
  const over = (touch: Touch): boolean => windows.used(`${touch.kind}\n${touch.key}`) >= (touch.kind === 'read' ? readUnitsPerSecond : writeUnitsPerSecond);
  const charge = (charges: readonly Charge[], reserved: readonly string[] = []): void => {
    // What the call's attempts reserved at the gate is part of what it consumed: charged already.
    const credit = new Map<string, number>();
    for (const key of reserved) credit.set(key, (credit.get(key) ?? 0) + 1);
    for (const c of charges) {
      const key = `${c.kind}\n${c.key}`;
      const take = Math.min(credit.get(key) ?? 0, c.units);
      credit.set(key, (credit.get(key) ?? 0) - take);
      if (c.units - take > 0) windows.add(key, c.units - take);
    }
  };
  /**
   * What the outer middleware decided for a call, read by the inner one on every attempt; and the
   * write units its attempts reserved as they passed the gate (one per partition written), so that
   * calls in flight at once meet each other's writes, as they would at DynamoDB, not only those
   * that have finished.
   */
  const gates = new WeakMap<object, { touches: Touch[]; batch: boolean; reserved: string[] }>();

  // Outside the retry loop, on the document client's plain values: refuse what DynamoDB refuses,
  // hold a batch's throttled keys back, and charge what a call consumed once it succeeded.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      let input = args.input as Item;
      try {
        validate(command, input);
      } catch (error) {
        options.meter.count('dynamodb.refused');
        throw error;
      }
      let heldBack: HeldBack | undefined;
      if (BATCHES.has(command)) {
        heldBack = holdBackThrottled(command, input, keys, over);
        if (heldBack.count > 0) {
          options.meter.count('dynamodb.unprocessed', heldBack.count);
          input = heldBack.input;
        }
      }
      const gate = { touches: keys.touches(command, input), batch: BATCHES.has(command), reserved: [] as string[] };
      gates.set(context, gate);
      let result;
      try {
        result = await next({ ...args, input });
      } catch (error) {
        const name = error instanceof Error ? error.name : '';
        if (name === 'ConditionalCheckFailedException' || name === 'TransactionCanceledException') charge(keys.failedWriteCharges(command, input), gate.reserved);
        throw error;
      }
      const output = result.output as unknown as Item;
      charge(keys.charges(command, input, output), gate.reserved);
      if (command === 'BatchGetItemCommand') capBatchGet(input, output, keys);
      if (heldBack && heldBack.count > 0) heldBack.restore(output);
      return result;
    },
    { step: 'initialize', priority: 'low', name: 'awsLimitsCalls', override: true },
  );

  // Inside the retry loop: a call to a partition out of units is throttled, on every attempt.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const gate = gates.get(context);
      if (gate && gate.touches.length > 0) {
        const throttled = gate.batch ? (gate.touches.every(over) ? gate.touches[0] : undefined) : gate.touches.find(over);
        if (throttled) {
          options.meter.count('dynamodb.throttled');
          throw throughputExceeded(throttled);
        }
        for (const touch of gate.touches) {
          if (touch.kind !== 'write') continue;
          const key = `${touch.kind}\n${touch.key}`;
          windows.add(key, 1);
          gate.reserved.push(key);
        }
      }
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'awsLimitsThrottle', override: true },
  );
  return windows;
}

interface HeldBack {
  readonly count: number;
  readonly input: Item;
  restore(output: Item): void;
}

/** A batch without its keys whose partitions are out of units (unless all are), and how to hand them back as unprocessed. */
function holdBackThrottled(command: string, input: Item, keys: TableKeys, over: (touch: Touch) => boolean): HeldBack {
  const requestItems = (input.RequestItems ?? {}) as Record<string, unknown>;
  const kept: Record<string, unknown> = {};
  const held: Record<string, unknown[]> = {};
  let count = 0;
  let total = 0;
  for (const [table, request] of Object.entries(requestItems)) {
    const entries = command === 'BatchGetItemCommand' ? ((request as { Keys?: Item[] }).Keys ?? []) : (request as Item[]);
    const keep: unknown[] = [];
    for (const entry of entries) {
      total++;
      const single = command === 'BatchGetItemCommand' ? { RequestItems: { [table]: { ...(request as Item), Keys: [entry] } } } : { RequestItems: { [table]: [entry] } };
      if (keys.touches(command, single).some(over)) (held[table] ??= []).push(entry);
      else keep.push(entry);
    }
    count += held[table]?.length ?? 0;
    if (keep.length > 0) kept[table] = command === 'BatchGetItemCommand' ? { ...(request as Item), Keys: keep } : keep;
  }
  // Every key throttled: the whole call fails with ProvisionedThroughputExceededException, as DynamoDB's does.
  if (count === 0 || count === total) return { count: 0, input, restore: () => undefined };
  return {
    count,
    input: { ...input, RequestItems: kept },
    restore: (output) => {
      if (command === 'BatchGetItemCommand') {
        const unprocessed = ((output.UnprocessedKeys ??= {}) as Record<string, { Keys?: Item[] }>);
        for (const [table, entries] of Object.entries(held)) {
          const spec = unprocessed[table] ?? { ...(requestItems[table] as Item), Keys: [] };
          unprocessed[table] = { ...spec, Keys: [...(spec.Keys ?? []), ...(entries as Item[])] };
        }
      } else {
        const unprocessed = ((output.UnprocessedItems ??= {}) as Record<string, unknown[]>);
        for (const [table, entries] of Object.entries(held)) unprocessed[table] = [...(unprocessed[table] ?? []), ...entries];
      }
    },
  };
}

/** A BatchGetItem answers at most 16 MB; the keys of the items past it come back unprocessed. */
function capBatchGet(input: Item, output: Item, keys: TableKeys): void {
  const responses = (output.Responses ?? {}) as Record<string, Item[]>;
  let bytes = 0;
  for (const [table, items] of Object.entries(responses)) {
    const within: Item[] = [];
    const past: Item[] = [];
    for (const item of items) {
      bytes += itemSize(item);
      (bytes <= DYNAMODB_BATCH_GET_BYTES ? within : past).push(item);
    }
    if (past.length === 0) continue;
    responses[table] = within;
    const unprocessed = ((output.UnprocessedKeys ??= {}) as Record<string, { Keys?: Item[] }>);
    const spec = unprocessed[table] ?? { ...((input.RequestItems as Record<string, Item>)[table] ?? {}), Keys: [] };
    unprocessed[table] = { ...spec, Keys: [...(spec.Keys ?? []), ...past.map((item) => keys.keyOf(table, item))] };
  }
}

/** What DynamoDB refuses outright, with its ValidationException. */
function validate(command: string, input: Item): void {
  switch (command) {
    case 'PutItemCommand':
      if (itemSize(input.Item) > DYNAMODB_ITEM_BYTES) throw validationError('Item size has exceeded the maximum allowed size');
      return;
    case 'TransactWriteItemsCommand': {
      const items = (input.TransactItems as Item[] | undefined) ?? [];
      if (items.length > DYNAMODB_TRANSACT_WRITE_ITEMS) {
        throw validationError(`1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to ${DYNAMODB_TRANSACT_WRITE_ITEMS}`);
      }
      for (const entry of items) if (itemSize((entry.Put as Item | undefined)?.Item) > DYNAMODB_ITEM_BYTES) throw validationError('Item size has exceeded the maximum allowed size');
      if (itemSize(items) > DYNAMODB_TRANSACT_WRITE_BYTES) throw validationError('Transaction request cannot be larger than 4 MB');
      return;
    }
    case 'BatchGetItemCommand': {
      const count = Object.values((input.RequestItems as Record<string, { Keys?: unknown[] }> | undefined) ?? {}).reduce((sum, spec) => sum + (spec.Keys?.length ?? 0), 0);
      if (count > DYNAMODB_BATCH_GET_KEYS) throw validationError('Too many items requested for the BatchGetItem call');
      return;
    }
    case 'BatchWriteItemCommand': {
      const entries = Object.values((input.RequestItems as Record<string, Item[]> | undefined) ?? {}).flat();
      if (entries.length > DYNAMODB_BATCH_WRITE_ITEMS) {
        throw validationError(`1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: Member must have length less than or equal to ${DYNAMODB_BATCH_WRITE_ITEMS}`);
      }
      for (const entry of entries) if (itemSize((entry.PutRequest as Item | undefined)?.Item) > DYNAMODB_ITEM_BYTES) throw validationError('Item size has exceeded the maximum allowed size');
      return;
    }
    default:
      return;
  }
}

function validationError(message: string): DynamoDBServiceException {
  return new DynamoDBServiceException({ name: 'ValidationException', $fault: 'client', $metadata: { httpStatusCode: 400 }, message });
}

/** As an on-demand table's hot key is throttled: the SDK classes it as throttling and retries it. */
function throughputExceeded(touch: Touch): ProvisionedThroughputExceededException {
  const reason = `${touch.index ? 'Index' : 'Table'}${touch.kind === 'read' ? 'Read' : 'Write'}KeyRangeThroughputExceeded`;
  return new ProvisionedThroughputExceededException({
    message:
      'Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. ' +
      'If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html',
    $metadata: { httpStatusCode: 400 },
    ThrottlingReasons: [{ reason, resource: touch.resource }],
  });
}
