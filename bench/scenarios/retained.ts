/**
 * A fresh subscriber replaying many retained messages: seeded first (not measured), then one
 * SUBSCRIBE to their parent's `#` is the measured phase. A broker without retained messages
 * delivers none, and the row says "0 received" once nothing arrived for the stall time.
 */
import { performance } from 'node:perf_hooks';
import { BenchClient } from '../load/client';
import { DeliveryLog } from '../load/deliveries';
import { drive } from '../load/drive';
import { publishPacketBytes } from './publish';
import { n, publishes, type Scenario, type Size } from './scenario';

const counts = { quick: 1_000, full: 10_000 } satisfies Record<Size, number>;
const SEED_WINDOW = 1_000;

export const retainedReplay: Scenario = {
  name: 'retained-replay',
  describe: (size) => `a fresh QoS 1 subscriber to # over ${n(counts[size])} retained messages (seeded at QoS 1 first, not measured)`,
  run: async (ctx) => {
    const count = publishes(ctx, counts[ctx.size]);
    const topic = (seq: number): string => ctx.topic(`r/${seq}`);
    const notes: string[] = [];
    const publisher = await BenchClient.connect(ctx.endpoint, { clientId: ctx.clientId('seed') }, ctx.counters);
    let subscriber: BenchClient | undefined;
    try {
      const seeded = await drive({
        publisher,
        topic,
        qos: 1,
        retain: true,
        count,
        payloadBytes: ctx.payloadBytes,
        fanOut: 0,
        window: SEED_WINDOW,
        timeLimitMs: ctx.timeLimitMs * 3,
        stallMs: ctx.stallMs,
        log: new DeliveryLog(),
      });
      if (seeded.cutShort) notes.push(`seeding: ${seeded.cutShort}`);
      if (seeded.acknowledged < count) notes.push(`seeding: ${seeded.acknowledged} of ${count} retained messages acknowledged within the time limit`);

      subscriber = await BenchClient.connect(ctx.endpoint, { clientId: ctx.clientId('fresh') }, ctx.counters);
      const fresh = subscriber;
      const replay = await ctx.measure(async () => {
        const startedAt = performance.now();
        const log = new DeliveryLog(startedAt);
        fresh.onMessage = log.subscriber();
        await fresh.subscribe([{ topic: ctx.topic('r/#'), qos: 1 }]);
        const deadline = startedAt + ctx.timeLimitMs;
        while (log.unique < seeded.acknowledged) {
          if (performance.now() > deadline) {
            notes.push(`time limit (${ctx.timeLimitMs} ms) reached`);
            break;
          }
          if (!(await log.progress.wait(ctx.stallMs))) break;
        }
        return { log, startedAt, endedAt: Math.max(log.lastReceivedAt, startedAt) };
      });
      if (replay.log.unique < seeded.acknowledged) {
        notes.push(`${replay.log.unique} of ${seeded.acknowledged} retained messages received`);
      }
      return {
        kind: 'messages',
        publishes: 0,
        expected: seeded.acknowledged,
        log: replay.log,
        startedAt: replay.startedAt,
        endedAt: replay.endedAt,
        timeLimited: false,
        connections: 1,
        messageBytes: publishPacketBytes(topic(0), ctx.payloadBytes, 1),
        notes,
      };
    } finally {
      if (!ctx.ownsBroker) await clearRetained(publisher, topic, count);
      await Promise.all([publisher.disconnect(), subscriber?.disconnect()]);
    }
  },
};

/** An empty retained message deletes the retained message of its topic. */
async function clearRetained(publisher: BenchClient, topic: (seq: number) => string, count: number): Promise<void> {
  if (publisher.closed) return;
  publisher.batch(() => {
    for (let seq = 0; seq < count; seq++) void publisher.publish(topic(seq), Buffer.alloc(0), 0, true);
  });
  await publisher.ping();
}
