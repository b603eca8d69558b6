/** The cloud's fan-out workers: a synchronous invoke of the fan-out function per part. */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { FanoutJob, FanoutWorkers } from '../broker/fanout';

export class LambdaFanoutWorkers implements FanoutWorkers {
  constructor(
    private readonly lambda: LambdaClient,
    private readonly functionName: string,
  ) {}

  async run(job: FanoutJob): Promise<void> {
    const out = await this.lambda.send(
      new InvokeCommand({ FunctionName: this.functionName, InvocationType: 'RequestResponse', Payload: JSON.stringify(job) }),
    );
    // A handler error comes back as a 200 with FunctionError set: the publisher is not acknowledged.
    if (out.FunctionError) {
      throw new Error(`fan-out worker failed (${out.FunctionError}): ${Buffer.from(out.Payload ?? []).toString().slice(0, 500)}`);
    }
  }
}
