/**
 * CONNACK latency, cold and warm: from opening the socket to the CONNACK, one client at a time
 * (Clean Session, no will). Cold: the first CONNECT after the broker starts, once per fresh start
 * of it (the bench restarts the broker it owns; a broker it did not start gives no cold figures).
 * Warm: CONNECTs one after another on the broker of the last start, each with a new client id.
 */
import { performance } from 'node:perf_hooks';
import { BenchClient, type Endpoint, type TrafficCounters } from '../load/client';
import { summarize } from '../load/deliveries';
import { n, type Scenario } from './scenario';

const COLD_STARTS = { quick: 3, full: 10 } as const;
const WARM_CONNECTS = { quick: 50, full: 300 } as const;
const CONNACK_TIMEOUT_MS = 10_000;

/** One CONNECT to its CONNACK, in milliseconds; the client then disconnects. */
async function connackMs(endpoint: Endpoint, clientId: string, counters: TrafficCounters): Promise<number> {
  const started = performance.now();
  const client = await BenchClient.connect(endpoint, { clientId, clean: true, timeoutMs: CONNACK_TIMEOUT_MS }, counters);
  const elapsed = performance.now() - started;
  await client.disconnect();
  return elapsed;
}

export const connackLatency: Scenario = {
  name: 'connack-latency',
  coldBroker: true,
  describe: (size) => `CONNACK latency: the first CONNECT after each of ${COLD_STARTS[size]} fresh starts of the broker (cold), then ${n(WARM_CONNECTS[size])} CONNECTs one at a time (warm)`,
  run: async (ctx) => {
    const notes: string[] = [];
    const cold: number[] = [];
    let endpoint = ctx.endpoint;
    if (ctx.restartBroker) {
      for (let start = 0; start < COLD_STARTS[ctx.size]; start++) {
        if (start > 0) endpoint = await ctx.restartBroker();
        cold.push(await connackMs(endpoint, ctx.clientId('cold', start), ctx.counters));
      }
    } else {
      notes.push('no cold figures: the bench did not start this broker, so cannot start it afresh');
    }
    const warm = await ctx.measure(async () => {
      const out: number[] = [];
      for (let i = 0; i < WARM_CONNECTS[ctx.size]; i++) out.push(await connackMs(endpoint, ctx.clientId('warm', i), ctx.counters));
      return out;
    });
    return { kind: 'connack-latency', cold: summarize(cold), warm: summarize(warm), notes };
  },
};
