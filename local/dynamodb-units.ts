/**
 * What a DynamoDB call touches and what it costs, as DynamoDB bills it: which partitions (table
 * and partition key value, or index and its key value) it reads or writes, and the capacity units
 * it consumed there. Inputs and outputs in the document client's form (plain values).
 *
 * Reads: a strongly consistent read costs one unit per 4 KB of what it returned (a Query sums
 * its items before rounding up), an eventually consistent one (an index Query) half; writes one
 * unit per KB of the item; a transaction's items twice that. An update or delete whose item is
 * not returned counts as 1 KB, or as its key and values when they are larger. An index partition
 * is charged when a Put carries the index's key attribute or an Update SETs it; removing an item
 * from an index (REMOVE, Delete) is not charged, since the old key value is not in the request. A
 * Scan touches no one partition and is not charged. Sizes and limits: local/aws-limits.ts.
 */
import {
  DYNAMODB_READ_UNIT_BYTES,
  DYNAMODB_TRANSACTION_UNIT_FACTOR,
  DYNAMODB_WRITE_UNIT_BYTES,
} from './aws-limits';
import { brokerTables, type TableDefinition, type TableNames } from '../shared/store/tables';

export type Item = Record<string, unknown>;
export type UnitKind = 'read' | 'write';

/** A partition a call reads or writes: `key` identifies it (table, index, key value). */
export interface Touch {
  readonly key: string;
  readonly kind: UnitKind;
  /** Which table or index, for the error's throttling reason. */
  readonly resource: string;
  readonly index: boolean;
}

export interface Charge extends Touch {
  readonly units: number;
}

/** A Put, Update, Delete or ConditionCheck as it appears in a transaction or a single call. */
interface WriteInput {
  readonly TableName?: string;
  readonly Item?: Item;
  readonly Key?: Item;
  readonly UpdateExpression?: string;
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: Item;
}

interface QueryInput {
  readonly TableName?: string;
  readonly IndexName?: string;
  readonly KeyConditionExpression?: string;
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: Item;
  readonly ConsistentRead?: boolean;
}

type TransactEntry = { Put?: WriteInput; Update?: WriteInput; Delete?: WriteInput; ConditionCheck?: WriteInput };
type BatchWriteEntry = { PutRequest?: { Item: Item }; DeleteRequest?: { Key: Item } };
type BatchGetSpec = { Keys?: Item[]; ConsistentRead?: boolean };

/** The broker's tables by their real names, so a call's key attributes are known. */
export class TableKeys {
  private readonly byName: Map<string, TableDefinition>;

  constructor(names: TableNames) {
    this.byName = new Map(brokerTables.map((table) => [names[table.key], table]));
  }

  definition(table: string | undefined): TableDefinition | undefined {
    return table === undefined ? undefined : this.byName.get(table);
  }

  /** The partitions a call reads or writes, as far as its input tells (see the file's comment). */
  touches(command: string, input: Item): Touch[] {
    switch (command) {
      case 'GetItemCommand':
        return this.base(input.TableName as string, input.Key as Item, 'read');
      case 'QueryCommand':
        return this.queried(input as QueryInput);
      case 'PutItemCommand':
      case 'UpdateItemCommand':
      case 'DeleteItemCommand':
        return this.written(input as WriteInput);
      case 'TransactWriteItemsCommand':
        return ((input.TransactItems as TransactEntry[] | undefined) ?? []).flatMap((entry) => this.written(transactWrite(entry)));
      case 'BatchGetItemCommand':
        return Object.entries((input.RequestItems as Record<string, BatchGetSpec> | undefined) ?? {}).flatMap(([table, spec]) =>
          (spec.Keys ?? []).flatMap((key) => this.base(table, key, 'read')),
        );
      case 'BatchWriteItemCommand':
        return Object.entries((input.RequestItems as Record<string, BatchWriteEntry[]> | undefined) ?? {}).flatMap(([table, entries]) =>
          entries.flatMap((entry) => this.written(batchWrite(table, entry))),
        );
      default:
        return [];
    }
  }

  /** What a call that succeeded consumed, partition by partition. */
  charges(command: string, input: Item, output: Item): Charge[] {
    switch (command) {
      case 'GetItemCommand':
        return this.touches(command, input).map((t) => ({ ...t, units: readUnits(itemSize(output.Item), input.ConsistentRead === true) }));
      case 'QueryCommand': {
        const query = input as QueryInput;
        const bytes = ((output.Items as Item[] | undefined) ?? []).reduce((sum, item) => sum + itemSize(item), 0);
        const consistent = query.IndexName === undefined && query.ConsistentRead === true;
        return this.touches(command, input).map((t) => ({ ...t, units: readUnits(bytes, consistent) }));
      }
      case 'PutItemCommand':
      case 'UpdateItemCommand':
      case 'DeleteItemCommand':
        return this.writeCharges(input as WriteInput, 1, output.Attributes as Item | undefined);
      case 'TransactWriteItemsCommand':
        return ((input.TransactItems as TransactEntry[] | undefined) ?? []).flatMap((entry) =>
          this.writeCharges(transactWrite(entry), DYNAMODB_TRANSACTION_UNIT_FACTOR),
        );
      case 'BatchGetItemCommand': {
        const requested = (input.RequestItems as Record<string, BatchGetSpec> | undefined) ?? {};
        const responses = (output.Responses as Record<string, Item[]> | undefined) ?? {};
        return Object.entries(requested).flatMap(([table, spec]) => {
          const found = new Map((responses[table] ?? []).map((item) => [this.itemKey(table, item), item]));
          return (spec.Keys ?? []).flatMap((key) =>
            this.base(table, key, 'read').map((t) => ({ ...t, units: readUnits(itemSize(found.get(this.itemKey(table, key))), spec.ConsistentRead === true) })),
          );
        });
      }
      case 'BatchWriteItemCommand':
        return Object.entries((input.RequestItems as Record<string, BatchWriteEntry[]> | undefined) ?? {}).flatMap(([table, entries]) =>
          entries.flatMap((entry) => this.writeCharges(batchWrite(table, entry), 1)),
        );
      default:
        return [];
    }
  }

  /** What a write whose condition failed still costs: one unit (two in a transaction) on each partition it names. */
  failedWriteCharges(command: string, input: Item): Charge[] {
    const factor = command === 'TransactWriteItemsCommand' ? DYNAMODB_TRANSACTION_UNIT_FACTOR : 1;
    return this.touches(command, input)
      .filter((t) => t.kind === 'write')
      .map((t) => ({ ...t, units: factor }));
  }

  /** An item's primary key, as a string that identifies it in its table. */
  itemKey(table: string, item: Item): string {
    const definition = this.definition(table);
    if (!definition) return JSON.stringify(item);
    return JSON.stringify([item[definition.partitionKey.name], definition.sortKey ? item[definition.sortKey.name] : null]);
  }

  /** The key attributes of `item`, as a BatchGet's key. */
  keyOf(table: string, item: Item): Item {
    const definition = this.definition(table);
    if (!definition) return item;
    const key: Item = { [definition.partitionKey.name]: item[definition.partitionKey.name] };
    if (definition.sortKey) key[definition.sortKey.name] = item[definition.sortKey.name];
    return key;
  }

  private base(table: string, key: Item | undefined, kind: UnitKind): Touch[] {
    const definition = this.definition(table);
    const value = definition && key ? key[definition.partitionKey.name] : undefined;
    if (value === undefined) return [];
    return [{ key: partitionKey(table, undefined, value), kind, resource: table, index: false }];
  }

  private queried(query: QueryInput): Touch[] {
    const definition = this.definition(query.TableName);
    if (!definition || !query.TableName) return [];
    const index = query.IndexName ? definition.globalIndexes?.find((gsi) => gsi.name === query.IndexName) : undefined;
    if (query.IndexName && !index) return [];
    const attribute = (index ?? definition).partitionKey.name;
    const value = assigned(query.KeyConditionExpression, query, attribute);
    if (value === undefined) return [];
    const resource = index ? `${query.TableName}/index/${index.name}` : query.TableName;
    return [{ key: partitionKey(query.TableName, index?.name, value), kind: 'read', resource, index: index !== undefined }];
  }

  private written(write: WriteInput): Touch[] {
    const table = write.TableName;
    const definition = this.definition(table);
    if (!definition || !table) return [];
    const touches = this.base(table, write.Item ?? write.Key, 'write');
    for (const index of definition.globalIndexes ?? []) {
      const value = write.Item ? write.Item[index.partitionKey.name] : assigned(write.UpdateExpression, write, index.partitionKey.name);
      if (value !== undefined) touches.push({ key: partitionKey(table, index.name, value), kind: 'write', resource: `${table}/index/${index.name}`, index: true });
    }
    return touches;
  }

  private writeCharges(write: WriteInput, factor: number, returned?: Item): Charge[] {
    // An update not returning its item costs at least what it sets (its values and key), and 1 KB.
    const bytes = write.Item
      ? itemSize(write.Item)
      : returned
        ? itemSize(returned)
        : Math.max(DYNAMODB_WRITE_UNIT_BYTES, itemSize(write.Key ?? {}) + itemSize(write.ExpressionAttributeValues ?? {}));
    const units = factor * Math.max(1, Math.ceil(bytes / DYNAMODB_WRITE_UNIT_BYTES));
    return this.written(write).map((t) => ({ ...t, units }));
  }
}

function transactWrite(entry: TransactEntry): WriteInput {
  return entry.Put ?? entry.Update ?? entry.Delete ?? entry.ConditionCheck ?? {};
}

function batchWrite(table: string, entry: BatchWriteEntry): WriteInput {
  return entry.PutRequest ? { TableName: table, Item: entry.PutRequest.Item } : { TableName: table, Key: entry.DeleteRequest?.Key ?? {} };
}

function partitionKey(table: string, index: string | undefined, value: unknown): string {
  return `${table}\n${index ?? ''}\n${typeof value === 'string' ? value : JSON.stringify(value)}`;
}

/** The value `expression` sets `attribute` to with `name = :value` (a key condition, or an update's SET). */
function assigned(
  expression: string | undefined,
  input: { ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Item },
  attribute: string,
): unknown {
  if (!expression) return undefined;
  for (const match of expression.matchAll(/([#A-Za-z_][A-Za-z0-9_]*)\s*=\s*(:[A-Za-z0-9_]+)/g)) {
    const name = match[1]!.startsWith('#') ? input.ExpressionAttributeNames?.[match[1]!] : match[1];
    if (name === attribute) return input.ExpressionAttributeValues?.[match[2]!];
  }
  return undefined;
}

function readUnits(bytes: number, consistent: boolean): number {
  return Math.max(1, Math.ceil(bytes / DYNAMODB_READ_UNIT_BYTES)) * (consistent ? 1 : 0.5);
}

/**
 * An item's size as DynamoDB counts it, closely enough: attribute names plus values, a number
 * one byte per two significant digits plus one (as DynamoDB documents it; at most 21).
 */
export function itemSize(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number' || typeof value === 'bigint') return numberSize(String(value));
  if (typeof value === 'boolean' || value === null || value === undefined) return 1;
  if (value instanceof Uint8Array) return value.length;
  if (value instanceof Set) return [...(value as Set<unknown>)].reduce((sum: number, element) => sum + itemSize(element), 0);
  if (Array.isArray(value)) return 3 + value.reduce((sum: number, element) => sum + 1 + itemSize(element), 0);
  if (typeof value === 'object' && 'value' in value && Object.keys(value).length === 1) return numberSize(String(value.value)); // NumberValue
  return 3 + Object.entries(value as Item).reduce((sum, [name, element]) => sum + Buffer.byteLength(name) + 1 + itemSize(element), 0);
}

/** A number's size: its significant digits (no sign, point, exponent, leading or trailing zeros), two to a byte, plus one. */
function numberSize(text: string): number {
  const mantissa = text.toLowerCase().split('e')[0]!.replace(/[-+.]/g, '');
  const digits = mantissa.replace(/^0+/, '').replace(/0+$/, '').length;
  return Math.min(21, Math.ceil(Math.max(1, digits) / 2) + 1);
}
