/** An SQS queue: SendMessageBatch, one SQS message per MQTT message; the entries SQS refuses come back one by one. */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SqsTarget } from '../rules/rule-config';
import type { EntryFailure, TargetEntry, TargetSender } from '../rules/target-port';

export class SqsTargetSender implements TargetSender {
  readonly maxEntries = 10;
  /** A batch's total size SQS accepts (256 KiB), less room for the request's own fields. */
  readonly maxBytes = 250 * 1024;
  private readonly queueUrl: string;

  constructor(
    private readonly sqs: Pick<SQSClient, 'send'>,
    target: SqsTarget,
  ) {
    this.queueUrl = queueUrlOf(target.queue);
  }

  async send(entries: readonly TargetEntry[]): Promise<EntryFailure[]> {
    const answer = await this.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries.map((e, i) => ({ Id: String(i), MessageBody: JSON.stringify(e.body) })) }),
    );
    // SenderFault: the entry itself is wrong, and sending it again will not help.
    return (answer.Failed ?? []).map((f) => ({ index: Number(f.Id), error: f.Message ? `${f.Code}: ${f.Message}` : String(f.Code), retryable: f.SenderFault !== true }));
  }
}

/** A queue's URL from its URL or its ARN (`arn:aws:sqs:<region>:<account>:<name>`). */
export function queueUrlOf(queue: string): string {
  if (!queue.startsWith('arn:')) return queue;
  const [, partition, , region, account, name] = queue.split(':');
  const domain = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://sqs.${region}.${domain}/${account}/${name}`;
}
