/**
 * A connect storm: a fleet of devices connects all at once, a bounded number of handshakes in
 * flight (Clean Session, no will, no keep-alive), then every device disconnects. Once with 50
 * handshakes in flight and once with 200 (or once, with `--parallel`), each round with new
 * client ids. Counts what each CONNECT and each DISCONNECT costs the broker.
 */
import { performance } from 'node:perf_hooks';
import { summarize } from '../load/deliveries';
import { closeNow, connectFleet, disconnectAll } from '../load/fleet';
import { CONNACK_TIMEOUT_MS, FLEET_DEFAULTS } from './fleet';
import { n, type ConnectStormRound, type FleetFlags, type Scenario } from './scenario';

const ROUNDS = [FLEET_DEFAULTS.parallel, 200];
const TIME_LIMIT_SECONDS = { quick: 20, full: 60 } as const;
/** A round's connecting may take this many time limits. */
const CONNECT_TIME_LIMITS = 3;

function plan(flags: FleetFlags): { devices: number; rounds: readonly number[] } {
  return { devices: flags.devices ?? FLEET_DEFAULTS.devices, rounds: flags.parallel === undefined ? ROUNDS : [flags.parallel] };
}

export const connectStorm: Scenario = {
  name: 'connect-storm',
  timeLimitSeconds: TIME_LIMIT_SECONDS,
  describe: (_size, flags = {}) => {
    const { devices, rounds } = plan(flags);
    return `${n(devices)} devices connect (Clean Session, no will), ${rounds.join(', then ')} handshakes in flight, then disconnect`;
  },
  run: async (ctx) => {
    const { devices, rounds } = plan(ctx.fleet);
    const notes: string[] = [];
    const results = await ctx.measure(async () => {
      const out: ConnectStormRound[] = [];
      for (const [round, parallel] of rounds.entries()) {
        let connectMs = 0;
        const { value: connects, work: connectWork } = await ctx.meter(async () => {
          const started = performance.now();
          const result = await connectFleet(ctx.endpoint, devices, parallel, (i) => ({ clientId: ctx.clientId(`storm${round}`, i), clean: true, timeoutMs: CONNACK_TIMEOUT_MS }), ctx.counters, started + ctx.timeLimitMs * CONNECT_TIME_LIMITS);
          connectMs = performance.now() - started;
          return result;
        });
        const live = connects.clients.filter((client) => client !== undefined);
        let disconnectMs = 0;
        try {
          const { work: disconnectWork } = await ctx.meter(async () => {
            const started = performance.now();
            await disconnectAll(live);
            disconnectMs = performance.now() - started;
          });
          out.push({
            devices,
            parallel,
            connected: connects.connected,
            connectMs,
            connackMs: summarize(connects.connackMs),
            refused: connects.refused,
            failed: connects.failed,
            disconnectMs,
            ...(connectWork ? { connectWork } : {}),
            ...(disconnectWork ? { disconnectWork } : {}),
          });
        } finally {
          closeNow(live);
        }
        if (connects.untried > 0) notes.push(`${parallel} in flight: ${connects.untried} of ${devices} not tried within ${(ctx.timeLimitMs * CONNECT_TIME_LIMITS) / 1000} s`);
      }
      return out;
    });
    return { kind: 'connect-storm', rounds: results, notes };
  },
};
