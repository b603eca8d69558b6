/**
 * A Kinesis stream: PutRecords, one record per message (the JSON body as its data), keyed by the
 * rule's partition key template (`${topic}` by default, so one topic's records keep their order
 * in one shard). The records Kinesis refuses come back one by one.
 */
import { createHash } from 'node:crypto';
import { PutRecordsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import type { KinesisTarget } from '../rules/rule-config';
import { expandTemplate } from '../rules/rule-match';
import type { EntryFailure, TargetEntry, TargetSender } from '../rules/target-port';

/** Kinesis takes partition keys of up to 256 characters; a longer one is replaced by its SHA-256 (still one key per topic). */
const MAX_PARTITION_KEY = 256;
/** Refusals that may pass on a later try (the rest, such as a missing stream, will not). */
const PASSING = new Set(['ProvisionedThroughputExceededException', 'InternalFailure', 'KMSThrottlingException']);

export class KinesisTargetSender implements TargetSender {
  readonly maxEntries = 500;
  readonly maxBytes = 5 * 1024 * 1024 - 500 * MAX_PARTITION_KEY;

  constructor(
    private readonly kinesis: Pick<KinesisClient, 'send'>,
    private readonly target: KinesisTarget,
  ) {}

  async send(entries: readonly TargetEntry[]): Promise<EntryFailure[]> {
    const stream = this.target.stream.startsWith('arn:') ? { StreamARN: this.target.stream } : { StreamName: this.target.stream };
    const answer = await this.kinesis.send(
      new PutRecordsCommand({ ...stream, Records: entries.map((e) => ({ Data: Buffer.from(JSON.stringify(e.body)), PartitionKey: this.partitionKey(e) })) }),
    );
    return (answer.Records ?? []).flatMap((record, index) =>
      record.ErrorCode ? [{ index, error: record.ErrorMessage ? `${record.ErrorCode}: ${record.ErrorMessage}` : String(record.ErrorCode), retryable: PASSING.has(record.ErrorCode) }] : [],
    );
  }

  private partitionKey(entry: TargetEntry): string {
    const key = expandTemplate(this.target.partitionKey ?? '${topic}', entry) || '-';
    return key.length <= MAX_PARTITION_KEY ? key : createHash('sha256').update(key).digest('hex');
  }
}
