/**
 * What a CONNECT and the end of its connection cost in DynamoDB calls, counted by the capacity
 * meters of every table the broker reads and writes (Sessions, Connections, Subscriptions,
 * Retained, Security): the handlers driven as the listener drives them (listener connection
 * ids), on the real store on DynamoDB Local, with the default configuration (a connect rate
 * counted per client id). Each test also checks what the client sees, so a cheaper path that
 * stopped working would fail here.
 */
import mqttPacket, { type IConnackPacket, type Packet } from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeDeps } from '../../functions/runtime';
import { handleConnectionClosed } from '../../shared/broker/connection-closed';
import { handleConnectionBatches, handlePackets } from '../../shared/broker/packets';
import { newListenerConnectionId } from '../../shared/gateway/connection-id';
import { ReasonCode } from '../../shared/protocol/reason-codes';
import { recordingDeps, RecordingGateway } from '../support/recording-gateway';

const bytes = (packet: object, version: 4 | 5) => mqttPacket.generate(packet as Packet, { protocolVersion: version });
const connect = (clientId: string, options: { clean: boolean; version: 4 | 5; expiry?: number; will?: boolean }) =>
  bytes(
    {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: options.version,
      clientId,
      clean: options.clean,
      keepalive: 60,
      ...(options.version === 5 ? { properties: { sessionExpiryInterval: options.expiry ?? 0 } } : {}),
      ...(options.will ? { will: { topic: `will/${clientId}`, payload: Buffer.from('gone'), qos: 0, retain: false } } : {}),
    },
    options.version,
  );
const disconnect = (version: 4 | 5) => bytes({ cmd: 'disconnect' }, version);
const subscribe = (topic: string, version: 4 | 5) => bytes({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] }, version);

const gateway = new RecordingGateway();
let deps: RuntimeDeps;
const run = randomBytes(3).toString('hex');
let n = 0;
const clientId = (who: string) => `${who}-${run}-${++n}`;
const connectionId = () => newListenerConnectionId('http://127.0.0.1:9');

beforeAll(async () => {
  deps = (await recordingDeps('cost', gateway, { log: { info: () => undefined, warn: () => undefined, error: () => undefined } })) as RuntimeDeps;
});

/** DynamoDB calls `operation` made, on every table. */
async function calls(operation: () => Promise<unknown>): Promise<number> {
  const meters = [deps.store.meter, deps.securityStore.meter, deps.inbox.meter, deps.directory.meter];
  const before = meters.reduce((sum, meter) => sum + meter.calls, 0);
  await operation();
  return meters.reduce((sum, meter) => sum + meter.calls, 0) - before;
}

function connack(connection: string, version: 4 | 5): IConnackPacket {
  const packets = gateway.packets(connection, version);
  const first = packets[0];
  expect(first?.cmd).toBe('connack');
  return first as IConnackPacket;
}

describe('DynamoDB calls of CONNECT and of the end of the connection', () => {
  for (const version of [4, 5] as const) {
    it(`3.1.1/5.0 (v${version}): a clean start with no will costs at most 2 calls (the connection's read, which the listener spares, and one transaction with the connect rate), its DISCONNECT and a lost connection a few`, async () => {
      const id = clientId(`clean${version}`);
      const first = connectionId();
      const connected = await calls(() => handlePackets(deps, first, [connect(id, { clean: true, version })], version));
      expect(connected).toBeLessThanOrEqual(2);
      expect(connack(first, version)).toMatchObject({ sessionPresent: false, ...(version === 5 ? { reasonCode: 0 } : { returnCode: 0 }) });
      const disconnected = await calls(() => handlePackets(deps, first, [disconnect(version)], version));
      expect(disconnected).toBeLessThanOrEqual(4);
      expect(gateway.closed.has(first)).toBe(true);

      // Its session ended with it: the next clean start is as cheap, and finds nothing.
      const second = connectionId();
      expect(await calls(() => handlePackets(deps, second, [connect(id, { clean: true, version })], version))).toBeLessThanOrEqual(2);
      expect(connack(second, version).sessionPresent).toBe(false);
      // A connection lost without DISCONNECT (the listener's close report)
      const lost = await calls(() => handleConnectionClosed(deps, second));
      expect(lost).toBeLessThanOrEqual(3);
      console.log(`v${version} clean start: CONNECT ${connected} calls, DISCONNECT ${disconnected}, lost connection ${lost}`);
    });
  }

  it('clean starts handled together share transactions; one among them whose session exists still goes the long way, and every CONNECT is answered as alone', async () => {
    const taken = connectionId();
    const twin = clientId('twin');
    await handlePackets(deps, taken, [connect(twin, { clean: true, version: 5 })], 5);
    const fresh = Array.from({ length: 40 }, () => ({ id: clientId('batch'), connection: connectionId() }));
    // The existing session among the new ones: its transaction is cancelled by its own condition,
    // and whichever new ones shared it are written again on their own.
    const all = [...fresh.slice(0, 20), { id: twin, connection: connectionId() }, ...fresh.slice(20)];
    // One invocation with their first packets, as the listener hands them over.
    const cost = await calls(() => handleConnectionBatches(deps, all.map(({ id, connection }) => ({ connectionId: connection, frames: [connect(id, { clean: true, version: 5 })], knownVersion: 5, first: true }))));
    for (const { connection } of all) expect(connack(connection, 5)).toMatchObject({ sessionPresent: false, reasonCode: 0 });
    expect(gateway.packets(taken, 5).map((p) => p.cmd)).toEqual(['connack', 'disconnect']);
    // Each connection's session and record were written: each ends as a clean session does.
    for (const { connection } of fresh.slice(0, 3)) {
      await handlePackets(deps, connection, [disconnect(5)], 5);
      expect(gateway.closed.has(connection)).toBe(true);
    }
    expect(cost).toBeLessThan(all.length / 2);
    console.log(`${all.length} clean starts handled together: ${cost} calls`);
  });

  it('two clean starts of one new client id handled together (never in one transaction: DynamoDB refuses two operations on an item): one session, the later CONNECT takes it over', async () => {
    const id = clientId('same');
    const others = Array.from({ length: 10 }, () => ({ id: clientId('beside'), connection: connectionId() }));
    const both = [connectionId(), connectionId()];
    const all = [...others.slice(0, 5), { id, connection: both[0]! }, { id, connection: both[1]! }, ...others.slice(5)];
    await handleConnectionBatches(deps, all.map(({ id: clientIdOf, connection }) => ({ connectionId: connection, frames: [connect(clientIdOf, { clean: true, version: 5 })], knownVersion: 5, first: true })));
    for (const { connection } of all) expect(connack(connection, 5)).toMatchObject({ sessionPresent: false, reasonCode: 0 });
    // Whichever was handled first was taken over by the other: it alone heard DISCONNECT 0x8E.
    const disconnected = both.filter((connection) => gateway.packets(connection, 5).some((p) => p.cmd === 'disconnect'));
    expect(disconnected).toHaveLength(1);
    expect((gateway.packets(disconnected[0]!, 5)[1] as { reasonCode?: number }).reasonCode).toBe(ReasonCode.SessionTakenOver);
  });

  it('a clean start that takes over a connected session goes the long way: the old connection hears DISCONNECT 0x8E', async () => {
    const id = clientId('twin');
    const first = connectionId();
    const second = connectionId();
    await handlePackets(deps, first, [connect(id, { clean: true, version: 5 })], 5);
    const cost = await calls(() => handlePackets(deps, second, [connect(id, { clean: true, version: 5 })], 5));
    expect(gateway.packets(first, 5).map((p) => p.cmd)).toEqual(['connack', 'disconnect']);
    expect((gateway.packets(first, 5)[1] as { reasonCode?: number }).reasonCode).toBe(ReasonCode.SessionTakenOver);
    expect(connack(second, 5).sessionPresent).toBe(false);
    console.log(`clean start taking over a connected session: ${cost} calls`);
  });

  it('taking over an API Gateway connection costs one call more than a listener one: the inbox mark (takeover.ts)', async () => {
    const costs: number[] = [];
    for (const taken of [connectionId(), randomBytes(9).toString('base64')]) {
      const id = clientId('twin');
      await handlePackets(deps, taken, [connect(id, { clean: true, version: 5 })], 5);
      costs.push(await calls(() => handlePackets(deps, connectionId(), [connect(id, { clean: true, version: 5 })], 5)));
      // Its CONNECT was handled, not under a lease now: the mark is refused and the taker closes it.
      expect(gateway.packets(taken, 5).map((p) => p.cmd)).toEqual(['connack', 'disconnect']);
    }
    expect(costs[1]).toBe(costs[0]! + 1);
  });

  it('a resumed session (one subscription, nothing queued) costs more: reported, and Session Present 1', async () => {
    const id = clientId('resume');
    const first = connectionId();
    await handlePackets(deps, first, [connect(id, { clean: false, version: 5, expiry: 600 }), subscribe(`t/${id}`, 5)], 5);
    const detached = await calls(() => handlePackets(deps, first, [disconnect(5)], 5));
    const second = connectionId();
    const resumed = await calls(() => handlePackets(deps, second, [connect(id, { clean: false, version: 5, expiry: 600 })], 5));
    expect(connack(second, 5).sessionPresent).toBe(true);
    const lost = await calls(() => handleConnectionClosed(deps, second));
    console.log(`persistent session: DISCONNECT ${detached} calls, resume ${resumed}, lost connection ${lost}`);
    expect(detached).toBeLessThanOrEqual(3);
    expect(lost).toBeLessThanOrEqual(2);
  });

  it('a will is still published when a clean-start connection is lost', async () => {
    const id = clientId('will');
    const watcher = clientId('watcher');
    const watching = connectionId();
    await handlePackets(deps, watching, [connect(watcher, { clean: true, version: 4 }), subscribe(`will/${id}`, 4)], 4);
    const willing = connectionId();
    await handlePackets(deps, willing, [connect(id, { clean: true, version: 4, will: true })], 4);
    const lost = await calls(() => handleConnectionClosed(deps, willing));
    expect(gateway.packets(watching, 4).filter((p) => p.cmd === 'publish').map((p) => (p as { payload: Buffer }).payload.toString())).toEqual(['gone']);
    console.log(`clean start with a will, lost: ${lost} calls`);
  });
});
