/**
 * The listener task's batcher: the packets of many connections in one invocation, within a
 * window, bounded by the event's bytes and by packets; still one batch in flight per connection,
 * each connection's packets in order, and an outcome per connection.
 */
import { describe, expect, it } from 'vitest';
import { encodePacket } from '../../shared/protocol/codec';
import { ClientConnection } from '../../shared/listener/client-connection';
import type { Transport } from '../../shared/listener/transport';
import { entryEventBytes, PacketBatcher, type BatcherLimits } from '../../shared/listener/batcher';
import type { BatchResult, ConnectionOutcome, ListenerEvent, PacketSink } from '../../shared/listener/events';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A sink that records each event as JSON (as Lambda carries it) and answers when the test says. */
function heldSink(answer: (event: ListenerEvent) => BatchResult | undefined = () => undefined) {
  const events: Array<Extract<ListenerEvent, { type: 'batch' }>> = [];
  const sizes: number[] = [];
  const pending: Array<() => void> = [];
  let hold = false;
  const sink: PacketSink = {
    invoke: async (event) => {
      const json = JSON.stringify(event);
      sizes.push(Buffer.byteLength(json));
      const parsed = JSON.parse(json) as ListenerEvent;
      if (parsed.type === 'batch') events.push(parsed);
      if (hold) await new Promise<void>((resolve) => pending.push(resolve));
      return answer(parsed);
    },
  };
  return {
    sink,
    events,
    sizes,
    hold: () => void (hold = true),
    releaseAll: () => {
      hold = false;
      for (const resolve of pending.splice(0)) resolve();
    },
  };
}

const packet = (n: number, bytes = 10): Buffer => Buffer.concat([Buffer.from([0x30, bytes - 2]), Buffer.alloc(bytes - 2, n % 256)]);

function submitter(batcher: PacketBatcher, connectionId: string, count: number, bytes = 10) {
  const packets = Array.from({ length: count }, (_, i) => packet(i, bytes));
  return batcher.submit({ connectionId, packets, sequences: packets.map(() => batcher.nextSequence()) }).then((answer) => answer.outcome);
}

describe('PacketBatcher', () => {
  it('connections that hand in packets within the window share one invocation; the next window starts another', async () => {
    const { sink, events } = heldSink();
    const batcher = new PacketBatcher(sink, { batchWindowMs: 30 });
    const outcomes = [submitter(batcher, 'a', 2), submitter(batcher, 'b', 1), submitter(batcher, 'c', 3)];
    expect(events).toHaveLength(0); // waiting for the window
    expect(await Promise.all(outcomes)).toEqual(['handled', 'handled', 'handled']);
    expect(events).toHaveLength(1);
    expect(events[0]!.connections.map((c) => [c.connectionId, c.packets.length])).toEqual([
      ['a', 2],
      ['b', 1],
      ['c', 3],
    ]);
    await submitter(batcher, 'a', 1);
    expect(events).toHaveLength(2);
    expect(batcher.stats()).toEqual({ invocations: 2, connections: 4, packets: 7 });
  });

  it('window 0: each connection is sent at once, alone', async () => {
    const { sink, events } = heldSink();
    const batcher = new PacketBatcher(sink, { batchWindowMs: 0 });
    await Promise.all([submitter(batcher, 'a', 1), submitter(batcher, 'b', 1)]);
    expect(events.map((e) => e.connections.map((c) => c.connectionId))).toEqual([['a'], ['b']]);
  });

  it('an event never passes its byte bound: a connection that would make it too large goes in the next invocation', async () => {
    const { sink, events, sizes } = heldSink();
    const limits: Partial<BatcherLimits> = { batchWindowMs: 1_000, maxEventBytes: 20_000 };
    const batcher = new PacketBatcher(sink, limits);
    // 8 connections of 10 packets of 200 bytes: ~2,900 bytes of event each
    const outcomes = Array.from({ length: 8 }, (_, i) => submitter(batcher, `c${i}`, 10, 200));
    await sleep(50); // well inside the window: only full events have gone
    expect(events.length).toBeGreaterThanOrEqual(1);
    await Promise.all(outcomes);
    expect(events.length).toBeGreaterThanOrEqual(2);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(20_000);
    expect(events.flatMap((e) => e.connections.map((c) => c.connectionId))).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7']);
  });

  it('an invocation carries at most maxInvocationPackets packets (one connection over it alone)', async () => {
    const { sink, events } = heldSink();
    const batcher = new PacketBatcher(sink, { batchWindowMs: 1_000, maxInvocationPackets: 5 });
    await Promise.all([submitter(batcher, 'a', 3), submitter(batcher, 'b', 3), submitter(batcher, 'c', 2)]);
    expect(events.map((e) => e.connections.map((c) => c.connectionId))).toEqual([['a'], ['b', 'c']]);
  });

  it('each connection hears its own outcome; a failed invocation fails every connection in it', async () => {
    const { sink } = heldSink(() => ({ outcomes: { a: 'handled', b: 'failed', c: 'gone' } }));
    const batcher = new PacketBatcher(sink, { batchWindowMs: 5 });
    expect(await Promise.all([submitter(batcher, 'a', 1), submitter(batcher, 'b', 1), submitter(batcher, 'c', 1)])).toEqual(['handled', 'failed', 'gone']);
    const failing = new PacketBatcher({ invoke: () => Promise.reject(new Error('Lambda failed')) }, { batchWindowMs: 5 });
    const results = await Promise.allSettled([submitter(failing, 'a', 1), submitter(failing, 'b', 1)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});

describe('ClientConnection with the task batcher', () => {
  function device(id: string, batcher: PacketBatcher, sink: PacketSink) {
    let closed = false;
    const written: Buffer[] = [];
    const transport: Transport = {
      write: (bytes) => void written.push(bytes),
      close: () => void (closed = true),
      abort: () => void (closed = true),
      remoteAddress: '127.0.0.1',
      bufferedBytes: () => 0,
      framingBytes: 0,
    };
    const limits = { maximumPacketSize: 1024, connectTimeoutMs: 60_000, maxBatchPackets: 100, keepAliveLimit: 300, maxQueuedBytes: 1 << 20, maxOutboundBytes: 1 << 20, maxConnectPacketSize: 1024 };
    const client = new ClientConnection(id, transport, sink, limits, silent, () => undefined, batcher);
    return { client, written, isClosed: () => closed };
  }
  const connect = (clientId: string): Buffer => encodePacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId }, 4);
  const publish = (n: number): Buffer => encodePacket({ cmd: 'publish', topic: 't', payload: Buffer.from(String(n)), qos: 0, retain: false, dup: false }, 4);
  const payloads = (packets: readonly string[]): string[] => packets.map((p) => Buffer.from(p, 'base64')).filter((b) => b[0]! >> 4 === 3).map((b) => b.subarray(5).toString());

  it('one batch in flight per connection: what arrives meanwhile waits for the next invocation, in order; sequences follow arrival across connections', async () => {
    const recorder = heldSink();
    const batcher = new PacketBatcher(recorder.sink, { batchWindowMs: 5 });
    const a = device('a', batcher, recorder.sink);
    const b = device('b', batcher, recorder.sink);
    recorder.hold();
    a.client.receive(Buffer.concat([connect('a'), publish(1)]));
    b.client.receive(connect('b'));
    a.client.receive(publish(2));
    await sleep(30);
    // One invocation, held; a's second PUBLISH came after a had handed in its batch: it waits for the next.
    expect(recorder.events).toHaveLength(1);
    a.client.receive(publish(3));
    b.client.receive(publish(4));
    a.client.receive(publish(5));
    await sleep(30);
    expect(recorder.events).toHaveLength(1); // both connections have a batch in flight
    recorder.releaseAll();
    await sleep(30);
    expect(recorder.events).toHaveLength(2);
    const [first, second] = recorder.events;
    const of = (event: typeof first, id: string) => event!.connections.find((c) => c.connectionId === id)!;
    expect(payloads(of(first, 'a').packets)).toEqual(['1']);
    expect(payloads(of(second, 'a').packets)).toEqual(['2', '3', '5']);
    expect(payloads(of(second, 'b').packets)).toEqual(['4']);
    // The order the task received them in, across connections.
    expect(of(first, 'a').sequences).toEqual([1, 2]);
    expect(of(first, 'b').sequences).toEqual([3]);
    expect(of(second, 'a').sequences).toEqual([4, 5, 7]);
    expect(of(second, 'b').sequences).toEqual([6]);
  });

  it("marks a connection's first entry, and sends back with its next packets the record the last answer gave", async () => {
    const record = { connectionId: 'a', clientId: 'a', protocolVersion: 4 as const, keepalive: 0, cleanStart: true, sessionExpiryInterval: 0, connectedAt: 1 };
    const aliased = { ...record, topicAliases: { '1': 't' } };
    let answers = 0;
    const recorder = heldSink((event) => {
      answers++;
      const states = answers === 1 ? { a: record } : answers === 3 ? { a: aliased } : undefined;
      return { outcomes: Object.fromEntries((event as Extract<ListenerEvent, { type: 'batch' }>).connections.map((c) => [c.connectionId, 'handled' as const])), ...(states ? { states } : {}) };
    });
    const batcher = new PacketBatcher(recorder.sink, { batchWindowMs: 0 });
    const a = device('a', batcher, recorder.sink);
    for (const n of [1, 2, 3, 4]) {
      a.client.receive(n === 1 ? connect('a') : publish(n));
      await sleep(10);
    }
    const entries = recorder.events.map((event) => event.connections[0]!);
    expect(entries.map((e) => e.first)).toEqual([true, undefined, undefined, undefined]);
    // The CONNECT's answer made the record; an answer without one keeps the last; a changed one replaces it.
    expect(entries.map((e) => e.state)).toEqual([undefined, record, record, aliased]);
    // The event's size bound counts the record an entry carries.
    expect(entryEventBytes('a', [], aliased) - entryEventBytes('a', [])).toBe(Buffer.byteLength(JSON.stringify(aliased)));
  });

  it('[MQTT-3.12.4-1] a PINGREQ with nothing before it is answered at once; behind packets not handled yet, the handler answers it after them', async () => {
    const recorder = heldSink((event) => ({ outcomes: Object.fromEntries((event as Extract<ListenerEvent, { type: 'batch' }>).connections.map((c) => [c.connectionId, 'handled' as const])) }));
    const batcher = new PacketBatcher(recorder.sink, { batchWindowMs: 0 });
    const a = device('a', batcher, recorder.sink);
    a.client.receive(connect('a'));
    await sleep(10);
    a.client.deliver(encodePacket({ cmd: 'connack', returnCode: 0, sessionPresent: false }, 4));
    const pingreq = encodePacket({ cmd: 'pingreq' }, 4);
    const pingresps = () => a.written.filter((b) => b[0] === 0xd0).length;
    a.client.receive(pingreq);
    expect(pingresps()).toBe(1);
    expect(recorder.events).toHaveLength(1);

    recorder.hold();
    const puback = encodePacket({ cmd: 'puback', messageId: 7 }, 4);
    // In one read, and in two while the PUBACK's invocation is in flight: not answered here.
    a.client.receive(Buffer.concat([puback, pingreq]));
    await sleep(10);
    a.client.receive(pingreq);
    expect(pingresps()).toBe(1);
    recorder.releaseAll();
    await sleep(20);
    const kinds = recorder.events.slice(1).flatMap((e) => e.connections[0]!.packets.map((p) => Buffer.from(p, 'base64')[0]! >> 4));
    expect(kinds).toEqual([4, 12, 12]);
  });

  it('a connection whose packets failed is closed; the others in the same invocation are not', async () => {
    const outcomes: Record<string, ConnectionOutcome> = { a: 'handled', b: 'failed' };
    const recorder = heldSink(() => ({ outcomes }));
    const batcher = new PacketBatcher(recorder.sink, { batchWindowMs: 5 });
    const a = device('a', batcher, recorder.sink);
    const b = device('b', batcher, recorder.sink);
    a.client.receive(connect('a'));
    b.client.receive(connect('b'));
    await sleep(40);
    expect(recorder.events).toHaveLength(1);
    expect(a.isClosed()).toBe(false);
    expect(b.isClosed()).toBe(true);
  });
});
