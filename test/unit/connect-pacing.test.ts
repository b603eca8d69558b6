import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { ConnectPacing } from '../../shared/listener/connect-pacing';
import type { ListenerEvent } from '../../shared/listener/events';

const frame = (packet: object) => mqttPacket.generate(packet as Packet, { protocolVersion: 4 }).toString('base64');
const connectEvent = (connectionId: string): ListenerEvent => ({
  type: 'packets',
  connectionId,
  packets: [frame({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: connectionId, clean: true, keepalive: 60 })],
});
const pingEvent = (connectionId: string): ListenerEvent => ({ type: 'packets', connectionId, packets: [frame({ cmd: 'pingreq' })] });

/** A sink whose invocations finish when the test says so. */
function manualSink() {
  const running = new Map<string, () => void>();
  const started: string[] = [];
  return {
    started,
    running,
    finish: (id: string) => running.get(id)!(),
    sink: {
      invoke: (event: ListenerEvent) =>
        new Promise<void>((resolve) => {
          started.push(event.connectionId);
          running.set(event.connectionId, resolve);
        }),
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ConnectPacing', () => {
  it('hands at most `limit` CONNECT batches to the handler at once; the rest go in arrival order as earlier ones finish', async () => {
    const manual = manualSink();
    const pacing = new ConnectPacing(manual.sink, 2);
    const done = ['a', 'b', 'c', 'd'].map((id) => pacing.invoke(connectEvent(id)));
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
    await Promise.all(done);
    expect(pacing.queued).toBe(0);
  });

  it('never holds a batch of a connection already connected, nor a close report', async () => {
    const manual = manualSink();
    const pacing = new ConnectPacing(manual.sink, 1);
    void pacing.invoke(connectEvent('a'));
    void pacing.invoke(connectEvent('b'));
    void pacing.invoke(pingEvent('c'));
    void pacing.invoke({ type: 'closed', connectionId: 'd', reason: 'socket closed' });
    await tick();
    expect(manual.started).toEqual(['a', 'c', 'd']);
  });

  it('a failed CONNECT batch fails to its caller and frees its place for the next', async () => {
    const started: string[] = [];
    const failing = new ConnectPacing({ invoke: (event) => (started.push(event.connectionId), Promise.reject(new Error('handler failed'))) }, 1);
    await expect(failing.invoke(connectEvent('a'))).rejects.toThrow('handler failed');
    await expect(failing.invoke(connectEvent('b'))).rejects.toThrow('handler failed');
    expect(started).toEqual(['a', 'b']);
  });
});
