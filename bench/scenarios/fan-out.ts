/** One publisher, many subscribers of one topic: what a delivery costs when a publish has many. */
import { publishToSubscribers } from './publish';
import { n, type Scenario, type Size } from './scenario';

function fanOut(subscribers: number, publishes: Record<Size, number>, window: number): Scenario {
  return {
    name: `fanout-${subscribers}`,
    describe: (size) =>
      `QoS 0, 1 publisher -> ${n(subscribers)} subscribers of one topic, up to ${n(publishes[size])} publishes (${n(publishes[size] * subscribers)} deliveries), ${window} publishes in flight`,
    run: (ctx) =>
      publishToSubscribers(ctx, {
        subscribers,
        filter: () => ctx.topic('fan'),
        subscriberQos: 0,
        topic: () => ctx.topic('fan'),
        qos: 0,
        fanOut: subscribers,
        count: publishes[ctx.size],
        window,
      }),
  };
}

export const fanOut100 = fanOut(100, { quick: 200, full: 2_000 }, 20);
export const fanOut1000 = fanOut(1_000, { quick: 20, full: 200 }, 4);
