/**
 * The sweeper at scale: what one run costs does not grow with the live connections, and nothing
 * it checks holds up due wills or session expiry. The harness's own timer loop is off here
 * (an hour), so only the sweeper publishes wills and ends sessions.
 */
import { describe, expect, it } from 'vitest';
import { newListenerConnectionId } from '../../shared/gateway/connection-id';
import type { ConnectionRecord } from '../../shared/broker/ports';
import { freePort } from '../../local/free-port';
import { collect, connectClient, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';

let counter = 0;
const unique = (name: string): string => `${name}-${process.pid}-${++counter}`;

const BROWSER_PROBES = 10;

function connection(connectionId: string, clientId: string, extra: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return { connectionId, clientId, protocolVersion: 5, keepalive: 60, cleanStart: true, sessionExpiryInterval: 0, connectedAt: Date.now(), ...extra };
}

describe('sweeper at scale', () => {
  const harness = useHarness({ apigw: { dropDisconnect: true }, timerIntervalMs: 3_600_000, sweeper: { browserProbes: BROWSER_PROBES } });

  const probes = (): number => harness().apigwRequests().GET ?? 0;
  const gatewayCalls = (name: string): number => harness().meters.gateway.snapshot().calls[name] ?? 0;

  it('[MQTT-3.1.3-9] publishes a due will and ends an expired session before probing any of 100 stale browser connections', async () => {
    for (let i = 0; i < 100; i++) await harness().store.connections.putConnection(connection(unique('stale'), unique('stale-client')));
    const willTopic = unique('scale/will');
    const watcher = await connectClient(harness().mqttUrl, { clientId: unique('watcher') });
    const wills = collect(watcher);
    await watcher.subscribeAsync(willTopic, { qos: 1 });
    const clientId = unique('leaving');
    const leaving = await connectClient(harness().mqttUrl, {
      protocolVersion: 5,
      clientId,
      clean: true,
      properties: { sessionExpiryInterval: 1 },
      will: { topic: willTopic, payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
    });
    leaving.stream.destroy();
    await eventually(() => !leaving.connected, 'the client to drop');
    await settle(1_500);
    expect(wills).toEqual([]);

    const before = probes();
    let probesWhenWillArrived: number | undefined;
    watcher.on('message', () => (probesWhenWillArrived ??= probes()));
    const result = await harness().sweep();

    await eventually(() => wills.length === 1, 'the will');
    expect(wills[0]!.payload).toBe('gone');
    // The timers ran first: the will went out before the sweeper's first GET @connections.
    expect(probesWhenWillArrived).toBe(before);
    expect(result.wills).toBeGreaterThanOrEqual(1);
    expect((await harness().store.sessions.getSessions([clientId])).has(clientId)).toBe(false);
    // One bounded page of the browsers, not all 100.
    expect(probes() - before).toBe(BROWSER_PROBES);
    expect(result.checked).toBeLessThanOrEqual(BROWSER_PROBES + 5);
    await watcher.endAsync();
  });

  it('probes a bounded page of browser connections a run, resuming where the last run stopped, and never the devices', async () => {
    // Whatever the first test left (stale items), ended page by page until a pass completes.
    const devices = await Promise.all([1, 2, 3].map(() => connectClient(harness().mqttUrl, { clientId: unique('device') })));
    const live = await Promise.all(
      [1, 2].map(async () => {
        const door = await RawConnection.apiGateway(harness().apigwUrl, 4);
        door.send({ cmd: 'connect', clientId: unique('browser'), protocolVersion: 4, clean: true, keepalive: 60 });
        await door.next('connack');
        return door;
      }),
    );
    let runs = 0;
    const probesBefore = gatewayCalls('probe');
    const taskProbesBefore = gatewayCalls('probeTask');
    for (;;) {
      const before = probes();
      const result = await harness().sweep();
      runs += 1;
      expect(probes() - before).toBeLessThanOrEqual(BROWSER_PROBES);
      if (result.ended === 0 && runs > 1) break;
      if (runs > 100) throw new Error('the stale connections were never all ended');
    }
    // The device connections were never asked after one by one: their task was, once a run.
    expect(gatewayCalls('probe') - probesBefore).toBeLessThanOrEqual(runs * BROWSER_PROBES);
    expect(gatewayCalls('probeTask') - taskProbesBefore).toBe(runs);
    expect(live.every((door) => !door.closed)).toBe(true);
    expect(devices.every((device) => device.connected)).toBe(true);
    for (const door of live) door.close();
    await Promise.all(devices.map((device) => device.endAsync()));
  }, 60_000);

  it("[MQTT-3.1.2-8] ends a dead listener task's connections by task, without probing each, and publishes their wills", async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    await harness().directory.recordHeartbeat(endpoint, Date.now());
    const willTopic = unique('dead-task/will');
    const watcher = await connectClient(harness().mqttUrl, { clientId: unique('watcher') });
    const wills = collect(watcher);
    await watcher.subscribeAsync(willTopic, { qos: 1 });
    const clientIds: string[] = [];
    for (let i = 0; i < 150; i++) {
      const clientId = unique('orphan');
      const connectionId = newListenerConnectionId(endpoint);
      clientIds.push(clientId);
      await harness().store.sessions.openSession({ clientId, connectionId, protocolVersion: 5, cleanStart: true, receiveMaximum: 65535, topicAliasMaximum: 0, holdMs: 30_000 });
      await harness().store.connections.putConnection(
        connection(connectionId, clientId, i === 0 ? { will: { topic: willTopic, payload: Buffer.from('task died'), qos: 1, retain: false } } : {}),
      );
    }
    const probesBefore = gatewayCalls('probe');

    const result = await harness().sweep();

    expect(result.deadTasks).toBe(1);
    expect(result.ended).toBeGreaterThanOrEqual(150);
    expect(gatewayCalls('probe') - probesBefore).toBeLessThanOrEqual(BROWSER_PROBES);
    const sessions = await harness().store.sessions.getSessions(clientIds);
    expect(sessions.size).toBe(0);
    await eventually(() => wills.length === 1, 'the will of a connection of the dead task');
    expect(wills[0]!.payload).toBe('task died');
    // Nothing left of it: the task is forgotten.
    expect((await harness().directory.listTasks()).map((t) => t.endpoint)).not.toContain(endpoint);
    await watcher.endAsync();
  }, 60_000);

  it('one run at a time: while another holds the sweep, a run only publishes due wills', async () => {
    const state = await harness().directory.claimSweep('another run', Date.now(), 60_000);
    expect(state).toBeDefined();
    expect(await harness().directory.claimSweep('a third', Date.now(), 60_000)).toBeUndefined();
    const before = probes();
    const result = await harness().sweep();
    expect(result.overlapped).toBe(true);
    expect(probes()).toBe(before);
    await harness().directory.releaseSweep('another run', state!);
    expect((await harness().sweep()).overlapped).toBe(false);
  });
});
