/** Many clients at once, a bounded number of handshakes in flight so the broker is not flooded. */
import { performance } from 'node:perf_hooks';
import type { QoS } from 'mqtt-packet';
import { forEachBounded } from '../../shared/util/concurrency';
import { BenchClient, ConnectionRefused, type ConnectOptions, type Endpoint, type TrafficCounters } from './client';

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

/** A fleet's connecting: who got in, who was refused (by CONNACK code) or failed, and how long each took. */
export interface FleetConnects {
  /** By device index; undefined for a device that did not get in. */
  readonly clients: ReadonlyArray<BenchClient | undefined>;
  readonly connected: number;
  /** Indexes not even tried before the deadline. */
  readonly untried: number;
  readonly refused: Record<string, number>;
  readonly failed: Record<string, number>;
  /** Socket opened to CONNACK, per accepted connection, in milliseconds. */
  readonly connackMs: number[];
}

/**
 * Connects `count` devices, `parallel` handshakes at a time, without giving up on a refusal: a
 * refused or failed device is counted and left out. Starts no handshake after `deadline`
 * (a `performance.now()` instant).
 */
export async function connectFleet(
  endpoint: Endpoint,
  count: number,
  parallel: number,
  options: (index: number) => ConnectOptions,
  counters: TrafficCounters,
  deadline = Number.POSITIVE_INFINITY,
): Promise<FleetConnects> {
  const clients: Array<BenchClient | undefined> = new Array(count).fill(undefined);
  const refused: Record<string, number> = {};
  const failed: Record<string, number> = {};
  const connackMs: number[] = [];
  let connected = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && performance.now() < deadline) {
      const i = next++;
      const started = performance.now();
      try {
        clients[i] = await BenchClient.connect(endpoint, options(i), counters);
        connackMs.push(performance.now() - started);
        connected += 1;
      } catch (error) {
        if (error instanceof ConnectionRefused) refused[`code ${error.code}`] = (refused[`code ${error.code}`] ?? 0) + 1;
        else {
          // The client id is in the message: leave it out so that reasons group.
          const reason = (error instanceof Error ? error.message : String(error)).replace(/^\S+: /, '');
          failed[reason] = (failed[reason] ?? 0) + 1;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return { clients, connected, untried: count - next, refused, failed, connackMs };
}

/** Clients the broker closed, by `role` and reason. */
export function closedByBroker(clients: ReadonlyArray<BenchClient | undefined>, role: string, closed: Record<string, number> = {}): Record<string, number> {
  for (const client of clients) {
    if (!client?.closed) continue;
    const reason = `${role} ${client.closeReason || 'connection closed'}`;
    closed[reason] = (closed[reason] ?? 0) + 1;
  }
  return closed;
}

/**
 * Before the first measured scenario on a broker the bench started: `count` clients connect, each
 * publishes one QoS 1 message, and they disconnect, unmeasured. A freshly started harness runs its
 * first thousand CONNECTs at a fraction of its later rate while DynamoDB Local's JVM and Node
 * compile their hot paths; a deployed broker's DynamoDB has no such phase.
 */
export async function warmUp(endpoint: Endpoint, count: number, clientId: (index: number) => string, topic: string, counters: TrafficCounters): Promise<void> {
  const clients = await connectMany(endpoint, count, (i) => ({ clientId: clientId(i), clean: true }), counters);
  try {
    await forEachBounded(clients, PARALLEL_HANDSHAKES, (client) => client.publish(topic, Buffer.from('warm-up'), 1));
  } finally {
    await disconnectAll(clients);
  }
}
