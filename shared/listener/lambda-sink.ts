/** The cloud PacketSink: a synchronous Lambda invoke of the packet handler per batch. */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { invokeSync } from '../lambda/invoke-sync';
import type { ListenerEvent, PacketSink } from './events';

export class LambdaPacketSink implements PacketSink {
  constructor(
    private readonly lambda: LambdaClient,
    private readonly functionName: string,
  ) {}

  invoke(event: ListenerEvent): Promise<void> {
    return invokeSync(this.lambda, this.functionName, event, 'packet handler');
  }
}
