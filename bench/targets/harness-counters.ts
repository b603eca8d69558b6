/** Reading a running harness: its counters, and when it has finished the work it was given. */
import type { Harness } from '../../local/harness';
import type { BrokerTarget, HarnessCounters } from './target';

export function readCounters(harness: Harness): HarnessCounters {
  return {
    dynamoDb: harness.meters.dynamoDb.snapshot(),
    invocations: harness.meters.invocations.snapshot(),
    gateway: harness.meters.gateway.snapshot(),
    limits: harness.meters.limits.snapshot(),
  };
}

/** Waits until no handler invocation has been running for a moment, or `limitMs` passed. */
export async function waitIdle(harness: Harness, limitMs = 120_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  let quietPolls = 0;
  while (quietPolls < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    quietPolls = harness.meters.invocations.snapshot().inFlight === 0 ? quietPolls + 1 : 0;
  }
}

/**
 * A harness running in this process (the smoke test's): counters only, since its CPU time and
 * memory are mixed with the load generator's.
 */
export function inProcessHarnessTarget(harness: Harness): BrokerTarget {
  return {
    name: 'serverless (in-process harness)',
    endpoint: { host: '127.0.0.1', port: harness.mqttPort },
    snapshot: async () => ({ counters: readCounters(harness) }),
    quiesce: () => waitIdle(harness),
    stop: async () => undefined,
  };
}
