/**
 * The sweeper's view of the Connections table: a paged Scan. Scheduled jobs only; no client
 * packet ever triggers it.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionDirectory, ConnectionRecord } from '../broker/ports';
import { CapacityMeter } from './capacity-meter';
import { DynamoTable } from './dynamo-table';

export interface DynamoConnectionDirectoryOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly meter?: CapacityMeter;
  /** Items per page (DynamoDB stops a page at 1 MB anyway). */
  readonly pageSize?: number;
}

export class DynamoConnectionDirectory implements ConnectionDirectory {
  readonly meter: CapacityMeter;
  private readonly table: DynamoTable;
  private readonly pageSize: number;

  constructor(options: DynamoConnectionDirectoryOptions) {
    this.meter = options.meter ?? new CapacityMeter();
    this.table = new DynamoTable(options.client, options.tableName, this.meter);
    this.pageSize = options.pageSize ?? 200;
  }

  async *scanConnections(): AsyncIterable<readonly ConnectionRecord[]> {
    for await (const items of this.table.scan({ Limit: this.pageSize })) yield items as unknown as ConnectionRecord[];
  }
}
