/** The cloud PacketSink: a synchronous Lambda invoke of the packet handler per batch. */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { ListenerEvent, PacketSink } from './events';

export class LambdaPacketSink implements PacketSink {
  constructor(
    private readonly lambda: LambdaClient,
    private readonly functionName: string,
  ) {}

  async invoke(event: ListenerEvent): Promise<void> {
    const out = await this.lambda.send(
      new InvokeCommand({ FunctionName: this.functionName, InvocationType: 'RequestResponse', Payload: JSON.stringify(event) }),
    );
    // A handler error comes back as a 200 with FunctionError set, not as an exception.
    if (out.FunctionError) {
      throw new Error(`packet handler failed (${out.FunctionError}): ${Buffer.from(out.Payload ?? []).toString().slice(0, 500)}`);
    }
  }
}
