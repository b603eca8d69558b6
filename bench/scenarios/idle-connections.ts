/**
 * Many idle connections: the broker's memory before and after most of them connect (after a
 * garbage collection, where the broker allows one) gives bytes per connection; the first tenth
 * connect before the first reading, so that what the first connections cause once (code
 * compiled, pools of sockets to DynamoDB) is not counted per connection. A PINGREQ from each of
 * a sample of them, the measured phase, gives what keeping a connection alive costs.
 */
import { performance } from 'node:perf_hooks';
import { forEachBounded } from '../../shared/util/concurrency';
import type { ConnectOptions } from '../load/client';
import { connectMany, disconnectAll } from '../load/fleet';
import { n, type Scenario, type Size } from './scenario';

const counts = { quick: 1_000, full: 10_000 } satisfies Record<Size, number>;
/** Long enough that no keep-alive expires while the scenario runs, within what the NLB and the listener carry. */
const KEEP_ALIVE_SECONDS = 300;
/** Few at a time: a burst would measure the broker's queue, not what one keep-alive costs. */
const PARALLEL_PINGS = 50;
/** Connecting may take this many time limits. */
const CONNECT_TIME_LIMITS = 3;
const CHUNK = 1_000;
/** What one keep-alive costs needs a sample, not every connection. */
const MAX_PINGS = 2_000;
/** Lets the broker finish what connecting started before its memory is read. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1_000));

export const idleConnections: Scenario = {
  name: 'idle-connections',
  freshBroker: true,
  describe: (size) => `${n(counts[size])} connections held open (keep-alive ${KEEP_ALIVE_SECONDS} s): memory per connection, then one PINGREQ from each of up to ${n(MAX_PINGS)}`,
  run: async (ctx) => {
    const count = counts[ctx.size];
    const warmUp = Math.ceil(count / 10);
    const options = (i: number): ConnectOptions => ({ clientId: ctx.clientId('idle', i), keepalive: KEEP_ALIVE_SECONDS });
    const clients = await connectMany(ctx.endpoint, warmUp, options, ctx.counters);
    try {
      await settle();
      const before = await ctx.memory();
      const connectStarted = performance.now();
      // Bounded in time too: a slow broker measures fewer connections rather than taking minutes.
      const deadline = connectStarted + ctx.timeLimitMs * CONNECT_TIME_LIMITS;
      while (clients.length < count && performance.now() < deadline) {
        const first = clients.length;
        clients.push(...(await connectMany(ctx.endpoint, Math.min(CHUNK, count - first), (i) => options(first + i), ctx.counters)));
      }
      const connectMs = performance.now() - connectStarted;
      await settle();
      const after = await ctx.memory();
      const pingMs = await ctx.measure(async () => {
        const started = performance.now();
        await forEachBounded(clients.slice(0, MAX_PINGS), PARALLEL_PINGS, (client) => client.ping());
        return performance.now() - started;
      });
      const dropped = clients.filter((client) => client.closed).length;
      return {
        kind: 'connections',
        connections: clients.length,
        measuredConnections: clients.length - warmUp,
        connectMs,
        ...(before ? { before } : {}),
        ...(after ? { after } : {}),
        pings: Math.min(clients.length, MAX_PINGS),
        pingMs,
        notes: [
          ...(clients.length < count ? [`${clients.length} of ${count} connected within ${(ctx.timeLimitMs * CONNECT_TIME_LIMITS) / 1000} s`] : []),
          ...(dropped > 0 ? [`${dropped} connections were closed by the broker`] : []),
        ],
      };
    } finally {
      await disconnectAll(clients);
    }
  },
};
