/** A Lambda function invoked asynchronously (InvocationType Event) with `{"messages": [...]}`. */
import { InvokeCommand, ResourceNotFoundException, RequestTooLargeException, InvalidRequestContentException, type LambdaClient } from '@aws-sdk/client-lambda';
import type { LambdaTarget } from '../rules/rule-config';
import { allFailed, type EntryFailure, type TargetEntry, type TargetSender } from '../rules/target-port';

export class LambdaTargetSender implements TargetSender {
  readonly maxEntries = 100;
  /** An asynchronous invocation's payload limit (256 KB), less room for the envelope. */
  readonly maxBytes = 250 * 1024;

  constructor(
    private readonly lambda: Pick<LambdaClient, 'send'>,
    private readonly target: LambdaTarget,
  ) {}

  async send(entries: readonly TargetEntry[]): Promise<EntryFailure[]> {
    try {
      await this.lambda.send(
        new InvokeCommand({ FunctionName: this.target.function, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify({ messages: entries.map((e) => e.body) })) }),
      );
      return [];
    } catch (error) {
      // These will not pass by trying again; throttling, a 5xx or a network error may.
      const lasting = error instanceof ResourceNotFoundException || error instanceof RequestTooLargeException || error instanceof InvalidRequestContentException;
      return allFailed(entries.length, error instanceof Error ? `${error.name}: ${error.message}` : String(error), !lasting);
    }
  }
}
