/**
 * The listener carries each connection's record from one invocation's answer to its next batch
 * (shared/broker/packets.ts): the handler reads no Connections record for a connection the
 * listener says is new or whose record it sent, answers the records it made or changed (a
 * CONNECT, a topic alias), and behaves exactly as with a record read from DynamoDB.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { RuntimeDeps } from '../../functions/runtime';
import { handleConnectionBatches, type ConnectionFrames } from '../../shared/broker/packets';
import { newListenerConnectionId } from '../../shared/gateway/connection-id';
import { recordingDeps, RecordingGateway } from '../support/recording-gateway';

const v5 = (packet: object) => mqttPacket.generate(packet as Packet, { protocolVersion: 5 });
const connect = (clientId: string, will = false) =>
  v5({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clientId,
    clean: true,
    keepalive: 60,
    properties: { sessionExpiryInterval: 0 },
    ...(will ? { will: { topic: `will/${clientId}`, payload: Buffer.from('gone'), qos: 0, retain: false } } : {}),
  });
const publish = (topic: string, payload: string, alias?: number) =>
  v5({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false, ...(alias ? { properties: { topicAlias: alias } } : {}) });
const subscribe = (filter: string) => v5({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] });

const gateway = new RecordingGateway();
let deps: RuntimeDeps;
const run = randomBytes(3).toString('hex');
const connectionId = () => newListenerConnectionId('http://127.0.0.1:9');

beforeAll(async () => {
  deps = (await recordingDeps('carried', gateway, { log: { info: () => undefined, warn: () => undefined, error: () => undefined } })) as RuntimeDeps;
});

const received = (connection: string) =>
  gateway
    .packets(connection, 5)
    .filter((p) => p.cmd === 'publish')
    .map((p) => `${(p as { topic: string }).topic}=${(p as { payload: Buffer }).payload.toString()}`);

describe('connection records carried by the listener', () => {
  it('a new connection and one whose record came with its packets are not read; the answer carries the records made or changed', async () => {
    const reads = vi.spyOn(deps.store.connections, 'getConnections');
    const watcher = connectionId();
    const device = connectionId();
    const watching: ConnectionFrames = { connectionId: watcher, frames: [connect(`w-${run}`), subscribe(`carried/${run}/#`)], sequences: [1, 2], first: true };
    const connecting: ConnectionFrames = { connectionId: device, frames: [connect(`d-${run}`, true)], sequences: [3], first: true };
    const opened = await handleConnectionBatches(deps, [watching, connecting]);
    expect(reads).not.toHaveBeenCalled();
    expect([...opened.outcomes.values()]).toEqual(['handled', 'handled']);
    const record = opened.records.get(device)!;
    expect(record).toMatchObject({ connectionId: device, clientId: `d-${run}`, protocolVersion: 5 });
    // The will stays in DynamoDB (it is needed only when the connection ends).
    expect(record).not.toHaveProperty('will');

    // A topic alias set: the answer carries it, and the next batch's alias-only PUBLISH uses it.
    const aliased = await handleConnectionBatches(deps, [{ connectionId: device, frames: [publish(`carried/${run}/a`, '1', 3)], sequences: [4], record }]);
    expect(reads).not.toHaveBeenCalled();
    const withAlias = aliased.records.get(device)!;
    expect(withAlias.topicAliases).toEqual({ '3': `carried/${run}/a` });
    const unchanged = await handleConnectionBatches(deps, [{ connectionId: device, frames: [publish('', '2', 3)], sequences: [5], record: withAlias }]);
    expect(reads).not.toHaveBeenCalled();
    expect(unchanged.records.size).toBe(0);
    expect(received(watcher)).toEqual([`carried/${run}/a=1`, `carried/${run}/a=2`]);

    // Without a record or the listener's word that it is new, the record is read, and the will is still there to publish.
    await handleConnectionBatches(deps, [{ connectionId: device, frames: [publish(`carried/${run}/b`, '3')], sequences: [6] }]);
    expect(reads).toHaveBeenCalledTimes(1);
    expect(received(watcher)).toEqual([`carried/${run}/a=1`, `carried/${run}/a=2`, `carried/${run}/b=3`]);
    const stored = await deps.store.connections.getConnection(device);
    expect(stored?.will?.topic).toBe(`will/d-${run}`);
    reads.mockRestore();
  });

  it('a connection closed in the invocation (DISCONNECT) answers no record', async () => {
    const device = connectionId();
    const done = await handleConnectionBatches(deps, [{ connectionId: device, frames: [connect(`x-${run}`), v5({ cmd: 'disconnect' })], sequences: [1, 2], first: true }]);
    expect(done.outcomes.get(device)).toBe('handled');
    expect(done.records.has(device)).toBe(false);
    expect(gateway.closed.has(device)).toBe(true);
  });
});
