/**
 * The sweeper's view of the Connections table: a paged Scan. Scheduled jobs only; no client
 * packet ever triggers it.
 */
import { ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionDirectory, ConnectionRecord } from '../broker/ports';
import { CapacityMeter } from './capacity-meter';

export interface DynamoConnectionDirectoryOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly meter?: CapacityMeter;
  /** Items per page (DynamoDB stops a page at 1 MB anyway). */
  readonly pageSize?: number;
}

export class DynamoConnectionDirectory implements ConnectionDirectory {
  readonly meter: CapacityMeter;

  constructor(private readonly options: DynamoConnectionDirectoryOptions) {
    this.meter = options.meter ?? new CapacityMeter();
  }

  async *scanConnections(): AsyncIterable<readonly ConnectionRecord[]> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.options.client.send(
        new ScanCommand({
          TableName: this.options.tableName,
          Limit: this.options.pageSize ?? 200,
          ExclusiveStartKey: start,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.meter.record('read', out.ConsumedCapacity);
      yield (out.Items ?? []) as unknown as ConnectionRecord[];
      start = out.LastEvaluatedKey;
    } while (start);
  }
}
