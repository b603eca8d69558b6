/**
 * The shape most scenarios share: subscribers connect and subscribe, one publisher sends, and
 * the measured phase is the publishing and its deliveries. Setup and teardown are not measured.
 */
import mqttPacket, { type QoS } from 'mqtt-packet';
import { BenchClient, type ConnectOptions } from '../load/client';
import { DeliveryLog } from '../load/deliveries';
import { drive } from '../load/drive';
import { connectMany, disconnectAll, subscribeEach } from '../load/fleet';
import { publishes, type MessagesOutcome, type ScenarioContext } from './scenario';

export interface PublishSpec {
  readonly subscribers: number;
  readonly filter: (index: number) => string;
  readonly subscriberQos: QoS;
  readonly subscriberOptions?: Partial<ConnectOptions>;
  readonly topic: (seq: number) => string;
  readonly qos: QoS;
  /** Deliveries each publish causes. */
  readonly fanOut: number;
  readonly count: number;
  readonly window: number;
  readonly ratePerSecond?: number;
  /** After the subscribers left: undo what they leave on the broker (a persistent session). */
  readonly cleanUp?: (ctx: ScenarioContext) => Promise<void>;
}

export async function publishToSubscribers(ctx: ScenarioContext, spec: PublishSpec): Promise<MessagesOutcome> {
  const log = new DeliveryLog();
  const subscribers = await connectMany(
    ctx.endpoint,
    spec.subscribers,
    (i) => ({ clientId: ctx.clientId('sub', i), ...spec.subscriberOptions }),
    ctx.counters,
  );
  let publisher: BenchClient | undefined;
  try {
    for (const subscriber of subscribers) subscriber.onMessage = log.subscriber();
    await subscribeEach(subscribers, spec.filter, spec.subscriberQos);
    publisher = await BenchClient.connect(ctx.endpoint, { clientId: ctx.clientId('pub') }, ctx.counters);
    const publishing = publisher;
    const result = await ctx.measure(() =>
      drive({
        publisher: publishing,
        topic: spec.topic,
        qos: spec.qos,
        count: publishes(ctx, spec.count),
        payloadBytes: ctx.payloadBytes,
        fanOut: spec.fanOut,
        window: spec.window,
        ...(spec.ratePerSecond ? { ratePerSecond: spec.ratePerSecond } : {}),
        timeLimitMs: ctx.timeLimitMs,
        stallMs: ctx.stallMs,
        log,
      }),
    );
    const closed = subscribers.find((s) => s.closed);
    const rate = (result.sent * 1000) / Math.max(1, result.endedAt - result.startedAt);
    const behind = spec.ratePerSecond !== undefined && rate < spec.ratePerSecond * 0.9;
    return {
      kind: 'messages',
      publishes: result.sent,
      expected: result.sent * spec.fanOut,
      log,
      startedAt: result.startedAt,
      endedAt: result.endedAt,
      timeLimited: result.timeLimited,
      connections: subscribers.length + 1,
      messageBytes: publishPacketBytes(spec.topic(0), ctx.payloadBytes, spec.qos),
      notes: [
        ...(result.cutShort ? [result.cutShort] : []),
        ...(closed ? [`a subscriber was disconnected: ${closed.closeReason}`] : []),
        ...(behind ? [`kept up with ${Math.round(rate)} of the paced ${spec.ratePerSecond} publishes/s: the latency is at saturation`] : []),
      ],
    };
  } finally {
    await disconnectAll(publisher ? [publisher, ...subscribers] : subscribers);
    await spec.cleanUp?.(ctx);
  }
}

export function publishPacketBytes(topic: string, payloadBytes: number, qos: QoS): number {
  return mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(payloadBytes), qos, dup: false, retain: false, ...(qos > 0 ? { messageId: 1 } : {}) })
    .length;
}
