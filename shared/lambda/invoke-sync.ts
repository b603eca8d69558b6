/** A synchronous Lambda invoke that fails when the function did: the listener's sink and the fan-out workers use it. */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';

/** The function's JSON answer (undefined when it returned nothing). */
export async function invokeSync(lambda: LambdaClient, functionName: string, event: unknown, what: string): Promise<unknown> {
  const out = await lambda.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'RequestResponse', Payload: JSON.stringify(event) }));
  // A handler error comes back as a 200 with FunctionError set, not as an exception.
  if (out.FunctionError) {
    throw new Error(`${what} failed (${out.FunctionError}): ${Buffer.from(out.Payload ?? []).toString().slice(0, 500)}`);
  }
  const text = Buffer.from(out.Payload ?? []).toString();
  return text === '' || text === 'null' ? undefined : (JSON.parse(text) as unknown);
}
