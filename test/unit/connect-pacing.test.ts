import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import type { ConnectionPackets, PacketSubmitter } from '../../shared/listener/batcher';
import { ConnectPacing } from '../../shared/listener/connect-pacing';
import type { ConnectionAnswer } from '../../shared/listener/events';

const frame = (packet: object) => mqttPacket.generate(packet as Packet, { protocolVersion: 4 });
const connectBatch = (connectionId: string): ConnectionPackets => ({
  connectionId,
  packets: [frame({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: connectionId, clean: true, keepalive: 60 })],
  sequences: [1],
});
const pingBatch = (connectionId: string): ConnectionPackets => ({ connectionId, packets: [frame({ cmd: 'pingreq' })], sequences: [1] });

/** A batcher whose submissions are answered when the test says so. */
function manualBatcher() {
  const running = new Map<string, (answer: ConnectionAnswer) => void>();
  const started: string[] = [];
  const batcher: PacketSubmitter = {
    maxEntryBytes: 1024,
    nextSequence: () => 1,
    submit: ({ connectionId }) =>
      new Promise<ConnectionAnswer>((resolve) => {
        started.push(connectionId);
        running.set(connectionId, resolve);
      }),
  };
  return { started, batcher, finish: (id: string) => running.get(id)!({ outcome: 'handled' }) };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ConnectPacing', () => {
  it('hands at most `limit` CONNECT batches to the handler at once; the rest go in arrival order as earlier ones finish', async () => {
    const manual = manualBatcher();
    const pacing = new ConnectPacing(manual.batcher, 2);
    const done = ['a', 'b', 'c', 'd'].map((id) => pacing.submit(connectBatch(id)));
    await tick();
    expect(manual.started).toEqual(['a', 'b']);
    expect(pacing.queued).toBe(2);
    manual.finish('b');
    await tick();
    expect(manual.started).toEqual(['a', 'b', 'c']);
    manual.finish('a');
    manual.finish('c');
    await tick();
    expect(manual.started).toEqual(['a', 'b', 'c', 'd']);
    manual.finish('d');
    expect((await Promise.all(done)).map((a) => a.outcome)).toEqual(['handled', 'handled', 'handled', 'handled']);
    expect(pacing.queued).toBe(0);
  });

  it('never holds a batch of a connection already connected', async () => {
    const manual = manualBatcher();
    const pacing = new ConnectPacing(manual.batcher, 1);
    void pacing.submit(connectBatch('a'));
    void pacing.submit(connectBatch('b'));
    void pacing.submit(pingBatch('c'));
    await tick();
    expect(manual.started).toEqual(['a', 'c']);
  });

  it('a failed CONNECT batch fails to its caller and frees its place for the next', async () => {
    const started: string[] = [];
    const failing = new ConnectPacing(
      { maxEntryBytes: 1024, nextSequence: () => 1, submit: ({ connectionId }) => (started.push(connectionId), Promise.reject(new Error('handler failed'))) },
      1,
    );
    await expect(failing.submit(connectBatch('a'))).rejects.toThrow('handler failed');
    await expect(failing.submit(connectBatch('b'))).rejects.toThrow('handler failed');
    expect(started).toEqual(['a', 'b']);
  });
});
