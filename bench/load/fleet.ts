/** Many clients at once, a bounded number of handshakes in flight so the broker is not flooded. */
import type { QoS } from 'mqtt-packet';
import { forEachBounded } from '../../shared/util/concurrency';
import { BenchClient, type ConnectOptions, type Endpoint, type TrafficCounters } from './client';

const PARALLEL_HANDSHAKES = 100;

export async function connectMany(
  endpoint: Endpoint,
  count: number,
  options: (index: number) => ConnectOptions,
  counters: TrafficCounters,
): Promise<BenchClient[]> {
  const clients: BenchClient[] = new Array(count);
  try {
    await forEachBounded([...Array(count).keys()], PARALLEL_HANDSHAKES, async (i) => {
      clients[i] = await BenchClient.connect(endpoint, options(i), counters);
    });
  } catch (error) {
    closeNow(clients.filter(Boolean));
    throw error;
  }
  return clients;
}

/** Each client subscribes to its own filter; throws if any is refused. */
export async function subscribeEach(clients: readonly BenchClient[], filter: (index: number) => string, qos: QoS): Promise<void> {
  await forEachBounded([...clients.keys()], PARALLEL_HANDSHAKES, async (i) => {
    const [granted] = await clients[i]!.subscribe([{ topic: filter(i), qos }]);
    if (granted === undefined || granted >= 0x80) throw new Error(`SUBSCRIBE ${filter(i)} refused (${granted})`);
  });
}

/** DISCONNECT every client and wait for the broker to close each. */
export async function disconnectAll(clients: readonly BenchClient[]): Promise<void> {
  await forEachBounded(clients, PARALLEL_HANDSHAKES * 5, (client) => client.disconnect());
}

export function closeNow(clients: readonly BenchClient[]): void {
  for (const client of clients) client.destroy();
}
