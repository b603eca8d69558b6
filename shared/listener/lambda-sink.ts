/** The cloud PacketSink: a synchronous Lambda invoke of the packet handler per batch. */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { invokeSync } from '../lambda/invoke-sync';
import type { BatchResult, ListenerEvent, PacketSink } from './events';

export class LambdaPacketSink implements PacketSink {
  constructor(
    private readonly lambda: LambdaClient,
    private readonly functionName: string,
  ) {}

  async invoke(event: ListenerEvent): Promise<BatchResult | void> {
    return (await invokeSync(this.lambda, this.functionName, event, 'packet handler')) as BatchResult | undefined;
  }
}
