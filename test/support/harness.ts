/** A broker harness for one test file: its own listener, emulator and tables on the shared DynamoDB Local. */
import { afterAll, beforeAll, inject } from 'vitest';
import { startHarness, type Harness, type HarnessOptions } from '../../local/harness';

/** `options`, or a function giving them when the harness starts (after the file's earlier beforeAll hooks). */
export function useHarness(options: HarnessOptions | (() => HarnessOptions) = {}): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await startHarness({
      dynamoDbEndpoint: inject('dynamoDbEndpoint'),
      mqttPort: 0,
      wsPort: 0,
      apigwPort: 0,
      logLevel: 'error',
      ...(typeof options === 'function' ? options() : options),
    });
  });
  afterAll(async () => {
    await harness?.stop();
  });
  return () => {
    if (!harness) throw new Error('harness not started');
    return harness;
  };
}
