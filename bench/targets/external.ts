import type { BrokerTarget } from './target';

/** Any broker on host:port: only what its clients see is measured. */
export function externalTarget(host: string, port: number): BrokerTarget {
  return {
    name: `${host}:${port}`,
    endpoint: { host, port },
    snapshot: async () => ({}),
    quiesce: async () => undefined,
    stop: async () => undefined,
  };
}
