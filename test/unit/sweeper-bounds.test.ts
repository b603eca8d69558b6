/**
 * The sweeper's bounds, on a clock that moves a second per probe: a run starts no new work past
 * its budget, the next resumes where it stopped, and a pass probes each connection once.
 */
import { describe, expect, it } from 'vitest';
import type { BrokerDeps } from '../../shared/broker/context';
import type { ConnectionDirectory, ConnectionProbe, OwnedConnection, SweepState } from '../../shared/broker/ports';
import { sweep } from '../../shared/broker/sweeper';

function world(browsers: number) {
  let now = 1_000_000;
  const owners = ['a#0', 'a#1'];
  const owned = new Map(owners.map((owner) => [owner, [] as OwnedConnection[]]));
  for (let i = 0; i < browsers; i++) owned.get(owners[i % 2]!)!.push({ connectionId: `c${String(i).padStart(3, '0')}`, clientId: `client${i}`, protocolVersion: 4 });
  let state: SweepState = {};
  let timerRuns = 0;
  const probed: string[] = [];
  const directory: ConnectionDirectory = {
    recordHeartbeat: async () => undefined,
    listTasks: async () => [],
    forgetTask: async () => undefined,
    browserOwners: () => owners,
    taskOwners: () => [],
    owned: async (owner, after, limit) => owned.get(owner)!.filter((c) => after === undefined || c.connectionId > after).slice(0, limit),
    claimSweep: async () => state,
    releaseSweep: async (_holder, next) => void (state = next),
  };
  const probeActivity = async (connectionId: string) => {
    probed.push(connectionId);
    now += 1_000;
    return { state: 'connected' as const };
  };
  const probe: ConnectionProbe = {
    probe: async (connectionId) => (await probeActivity(connectionId)).state,
    probeActivity,
    probeTask: async () => 'alive',
  };
  const broker = {
    now: () => now,
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    store: {
      wills: { claimDueWills: async () => (timerRuns++, []) },
      sessions: { endExpiredSessions: async () => ({ ended: 0, wills: [] }) },
    },
  } as unknown as BrokerDeps;
  return { broker, directory, probe, probed, state: () => state, timerRuns: () => timerRuns };
}

describe('the sweeper within its bounds', () => {
  it('starts no new probe past its budget, and the next run resumes where it stopped', async () => {
    const w = world(40);
    const options = { budgetMs: 5_000, browserProbes: 1_000 };
    const first = await sweep({ broker: w.broker, directory: w.directory, probe: w.probe, options });
    // A page of 16 probes, a wave at once, each a second: the first wave passes the budget, no second starts.
    expect(first.checked).toBe(16);
    expect(w.state().browsers).toBeDefined();
    let runs = 1;
    while (w.state().browsers && runs < 10) {
      await sweep({ broker: w.broker, directory: w.directory, probe: w.probe, options });
      runs += 1;
    }
    // A pass: every connection probed exactly once, over several runs.
    expect([...w.probed].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `c${String(i).padStart(3, '0')}`));
    expect(runs).toBeGreaterThan(1);
    // Every run ran the timers first.
    expect(w.timerRuns()).toBe(runs);
  });

  it('probes at most browserProbes a run, whatever the budget', async () => {
    const w = world(40);
    const result = await sweep({ broker: w.broker, directory: w.directory, probe: w.probe, options: { browserProbes: 7, budgetMs: 3_600_000 } });
    expect(result.checked).toBe(7);
    expect(w.state().browsers).toEqual({ owner: 'a#0', after: 'c012' });
    const next = await sweep({ broker: w.broker, directory: w.directory, probe: w.probe, options: { browserProbes: 7, budgetMs: 3_600_000 } });
    expect(next.checked).toBe(7);
    expect(w.probed.slice(7)).toEqual(['c014', 'c016', 'c018', 'c020', 'c022', 'c024', 'c026']);
  });
});
