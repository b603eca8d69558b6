/** The cloud's fan-out workers: a synchronous invoke of the fan-out function per part. */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { FanoutJob, FanoutWorkers } from '../broker/ports';
import { invokeSync } from './invoke-sync';

export class LambdaFanoutWorkers implements FanoutWorkers {
  constructor(
    private readonly lambda: LambdaClient,
    private readonly functionName: string,
  ) {}

  /** A worker that failed fails the publish: the publisher is not acknowledged. */
  async run(job: FanoutJob): Promise<void> {
    await invokeSync(this.lambda, this.functionName, job, 'fan-out worker');
  }
}
