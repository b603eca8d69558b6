/**
 * The broker's counters in DynamoDB: STATS_SHARDS items in the Sessions table, partition key
 * `\u0000stats\u0000<shard>`, sort key `stats` (U+0000 is in no client id [MQTT-1.5.4-2], so no
 * session's partition; as the per-user quota counters, shared/store/user-quota.ts). Every broker
 * function may write that table already; the Security table's grants are per key prefix. Each flush of a process's counters (shared/broker/stats.ts) is one UpdateItem that ADDs
 * its counts to a shard picked at random, so the fleet's flushes spread over the shards and no
 * item takes them all; the $SYS publisher reads the sums with one BatchGetItem of every shard.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SUMMED_COUNTERS, type StatsFlush, type StatsSink, type SummedCounter } from '../broker/stats';
import { CapacityMeter } from './capacity-meter';
import { DynamoTable, type Item } from './dynamo-table';

export const STATS_SHARDS = 16;

/** The fleet's sums, and when the first flush ever written happened (the broker's start, as the table knows it). */
export interface StatsTotals {
  readonly counts: Readonly<Record<SummedCounter, number>>;
  /** Epoch ms; undefined before any flush. */
  readonly startedAt?: number;
}

export function statsKey(shard: number): Item {
  return { clientId: `\u0000stats\u0000${shard}`, sk: 'stats' };
}

export class DynamoStatsStore implements StatsSink {
  private readonly table: DynamoTable;
  /** The calls this store makes, counted apart from the broker's own (tests show they do not grow with traffic). */
  readonly meter: CapacityMeter;
  private readonly random: () => number;

  /** `table`: the Sessions table's name. */
  constructor(options: { readonly client: DynamoDBDocumentClient; readonly table: string; readonly meter?: CapacityMeter; readonly random?: () => number }) {
    this.meter = options.meter ?? new CapacityMeter();
    this.table = new DynamoTable(options.client, options.table, this.meter);
    this.random = options.random ?? Math.random;
  }

  /** One UpdateItem: the flush's summed counters ADDed to a random shard. The metric-only counters are not stored. */
  async add({ counts, startedAt }: StatsFlush): Promise<void> {
    const summed = SUMMED_COUNTERS.filter((counter) => (counts[counter] ?? 0) !== 0);
    const names: Record<string, string> = { '#started': 'startedAt' };
    const values: Record<string, number> = { ':started': startedAt };
    summed.forEach((counter, i) => {
      names[`#c${i}`] = counter;
      values[`:c${i}`] = counts[counter]!;
    });
    const add = summed.length > 0 ? ` ADD ${summed.map((_, i) => `#c${i} :c${i}`).join(', ')}` : '';
    await this.table.update({
      Key: statsKey(Math.floor(this.random() * STATS_SHARDS)),
      // The earliest start any process reported: shards written later keep the first's.
      UpdateExpression: `SET #started = if_not_exists(#started, :started)${add}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  /** The sums over every shard: one BatchGetItem. */
  async totals(): Promise<StatsTotals> {
    const items = await this.table.batchGet(Array.from({ length: STATS_SHARDS }, (_, shard) => statsKey(shard)));
    const counts = Object.fromEntries(SUMMED_COUNTERS.map((counter) => [counter, items.reduce((sum, item) => sum + Number(item[counter] ?? 0), 0)])) as Record<
      SummedCounter,
      number
    >;
    const starts = items.map((item) => Number(item.startedAt)).filter((n) => Number.isFinite(n));
    return { counts, ...(starts.length > 0 ? { startedAt: Math.min(...starts) } : {}) };
  }
}
