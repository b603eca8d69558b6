import type { Door } from '../load/pipes';
import type { BrokerTarget } from './target';

/** Any broker on host:port: only what its clients see is measured. */
export function externalTarget(host: string, port: number, door: Door = 'tcp'): BrokerTarget {
  return {
    name: door === 'apigw' ? `ws://${host}:${port}` : `${host}:${port}`,
    endpoint: { host, port, door },
    snapshot: async () => ({}),
    quiesce: async () => undefined,
    stop: async () => undefined,
  };
}
