/** The cloud PacketSink: a synchronous Lambda invoke of the packet handler per batch. */
import type { LambdaClient, LambdaClientConfig } from '@aws-sdk/client-lambda';
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

/**
 * Invocations one listener task keeps in flight. The SDK's default pool is 50 sockets: at 50-100 ms
 * an invocation that caps a task near 500-1,000 invocations a second, while its CPU (what
 * autoscaling watches) stays low. A batch per window of 20 ms across 25,000 devices, each handler
 * taking up to a second under load, stays well inside this.
 */
export const LISTENER_LAMBDA_SOCKETS = 1_000;

/** The listener's Lambda client: keep-alive sockets, LISTENER_LAMBDA_SOCKETS of them. */
export function listenerLambdaClientConfig(base: LambdaClientConfig = {}): LambdaClientConfig {
  return {
    ...base,
    requestHandler: {
      httpsAgent: { keepAlive: true, maxSockets: LISTENER_LAMBDA_SOCKETS },
      httpAgent: { keepAlive: true, maxSockets: LISTENER_LAMBDA_SOCKETS },
    },
  };
}
