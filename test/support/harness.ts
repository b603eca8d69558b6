/** A broker harness for one test file: its own listener, emulator and tables on the shared DynamoDB Local. */
import { afterAll, beforeAll, inject } from 'vitest';
import { startHarness, type Harness, type HarnessOptions } from '../../local/harness';

export function useHarness(options: HarnessOptions = {}): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await startHarness({
      dynamoDbEndpoint: inject('dynamoDbEndpoint'),
      mqttPort: 0,
      wsPort: 0,
      apigwPort: 0,
      logLevel: 'error',
      ...options,
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
