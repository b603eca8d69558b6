import { describe, expect, it } from 'vitest';
import { BrokerStats, MAX_LATENCY_SAMPLES, sinks, type StatsFlush, type StatsSink } from '../../shared/broker/stats';
import { sysMessages } from '../../shared/broker/sys-topics';

function recordingSink(): StatsSink & { flushes: StatsFlush[]; failNext: boolean } {
  const sink = {
    flushes: [] as StatsFlush[],
    failNext: false,
    add: (flush: StatsFlush) => {
      if (sink.failNext) {
        sink.failNext = false;
        return Promise.reject(new Error('throttled'));
      }
      sink.flushes.push(flush);
      return Promise.resolve();
    },
  };
  return sink;
}

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('the broker counters', () => {
  it('count in memory: a thousand counts and a thousand invocations within the interval make no write', async () => {
    const sink = recordingSink();
    const time = clock();
    const stats = new BrokerStats(sink, { flushIntervalMs: 10_000, now: time.now });
    for (let i = 0; i < 1000; i++) {
      stats.count('publishReceived');
      stats.count('packetsReceived');
      await stats.flushIfDue();
      time.advance(5);
    }
    expect(sink.flushes).toHaveLength(0);
    expect(stats.pending()).toEqual({ publishReceived: 1000, packetsReceived: 1000 });
  });

  it('flush once the interval has passed: one write with everything counted since the last', async () => {
    const sink = recordingSink();
    const time = clock();
    const stats = new BrokerStats(sink, { flushIntervalMs: 10_000, now: time.now });
    stats.count('connects', 3);
    stats.count('disconnects');
    stats.count('subscriptions', 5);
    stats.count('subscriptions', -2);
    stats.latency(12.5);
    time.advance(10_000);
    await stats.flushIfDue();
    await stats.flushIfDue();
    expect(sink.flushes).toEqual([{ counts: { connects: 3, disconnects: 1, subscriptions: 3 }, latenciesMs: [12.5], startedAt: 1_000_000 }]);
    expect(stats.pending()).toEqual({});
    // Nothing counted since: the next interval writes nothing.
    time.advance(10_000);
    await stats.flushIfDue();
    expect(sink.flushes).toHaveLength(1);
  });

  it('a failed flush keeps its counts for the next one', async () => {
    const sink = recordingSink();
    const time = clock();
    const stats = new BrokerStats(sink, { flushIntervalMs: 1_000, now: time.now });
    stats.count('publishSent', 4);
    sink.failNext = true;
    time.advance(1_000);
    await expect(stats.flush()).rejects.toThrow('throttled');
    stats.count('publishSent');
    await stats.flush();
    expect(sink.flushes.map((f) => f.counts)).toEqual([{ publishSent: 5 }]);
  });

  it(`keeps at most ${MAX_LATENCY_SAMPLES} latencies an interval (EMF's limit of values per metric), sampled over all of them`, async () => {
    const sink = recordingSink();
    const stats = new BrokerStats(sink, { flushIntervalMs: 1, random: () => 0.5 });
    for (let i = 0; i < 1000; i++) stats.latency(i);
    await stats.flush();
    const [flush] = sink.flushes;
    expect(flush!.latenciesMs).toHaveLength(MAX_LATENCY_SAMPLES);
    expect(Math.max(...flush!.latenciesMs)).toBeGreaterThanOrEqual(MAX_LATENCY_SAMPLES);
  });

  it('sinks in turn: one that fails stops the rest (the EMF line is not printed for counts that go back)', async () => {
    const first = recordingSink();
    const second = recordingSink();
    first.failNext = true;
    await expect(sinks(first, second).add({ counts: { connects: 1 }, latenciesMs: [], startedAt: 0 })).rejects.toThrow();
    expect(second.flushes).toHaveLength(0);
  });
});

describe('the $SYS figures', () => {
  it("in Mosquitto's names; clients connected is connects minus disconnects, uptime in Mosquitto's form", () => {
    const counts = { packetsReceived: 40, packetsSent: 30, publishReceived: 12, publishSent: 9, connects: 7, disconnects: 3, subscriptions: 5, retained: 2 };
    const messages = Object.fromEntries(sysMessages({ counts, startedAt: 1_000 }, 62_500).map((m) => [m.topic, m.payload]));
    expect(messages).toEqual({
      '$SYS/broker/clients/connected': '4',
      '$SYS/broker/clients/total': '7',
      '$SYS/broker/messages/received': '40',
      '$SYS/broker/messages/sent': '30',
      '$SYS/broker/publish/messages/received': '12',
      '$SYS/broker/publish/messages/sent': '9',
      '$SYS/broker/subscriptions/count': '5',
      '$SYS/broker/retained messages/count': '2',
      '$SYS/broker/uptime': '61 seconds',
    });
  });

  it('never shows a negative figure (a lost flush of connects while its disconnects were written)', () => {
    const counts = { packetsReceived: 0, packetsSent: 0, publishReceived: 0, publishSent: 0, connects: 1, disconnects: 2, subscriptions: -1, retained: -1 };
    const messages = Object.fromEntries(sysMessages({ counts }, 0).map((m) => [m.topic, m.payload]));
    expect(messages['$SYS/broker/clients/connected']).toBe('0');
    expect(messages['$SYS/broker/subscriptions/count']).toBe('0');
    expect(messages['$SYS/broker/uptime']).toBe('0 seconds');
  });
});
