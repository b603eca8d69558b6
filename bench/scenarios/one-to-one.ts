/** One publisher, one subscriber: the hot path per message, at each QoS, flat out and paced. */
import { BenchClient } from '../load/client';
import { publishToSubscribers } from './publish';
import type { Scenario, ScenarioContext, Size } from './scenario';
import { n } from './scenario';

/** Enough for a fast broker to run a while; the time limit stops a slow one first. */
const counts = { quick: 20_000, full: 200_000 } satisfies Record<Size, number>;
const qos1Counts = { quick: 10_000, full: 100_000 } satisfies Record<Size, number>;
const WINDOW = 1_000;
const PACED_RATE = 1_000;
const pacedSeconds = { quick: 2, full: 5 } satisfies Record<Size, number>;
/** The persistent subscriber's session outlives its connection by this much. */
const SESSION_EXPIRY_SECONDS = 600;

export const qos0OneToOne: Scenario = {
  name: 'qos0-1to1',
  describe: (size) => `QoS 0, 1 publisher -> 1 subscriber, up to ${n(counts[size])} messages, ${n(WINDOW)} in flight`,
  run: (ctx) =>
    publishToSubscribers(ctx, {
      subscribers: 1,
      filter: () => ctx.topic('t'),
      subscriberQos: 0,
      topic: () => ctx.topic('t'),
      qos: 0,
      fanOut: 1,
      count: counts[ctx.size],
      window: WINDOW,
    }),
};

export const qos1OneToOne: Scenario = {
  name: 'qos1-1to1',
  describe: (size) => `QoS 1, 1 publisher -> 1 subscriber, up to ${n(qos1Counts[size])} messages, ${n(WINDOW)} in flight`,
  run: (ctx) =>
    publishToSubscribers(ctx, {
      subscribers: 1,
      filter: () => ctx.topic('t'),
      subscriberQos: 1,
      topic: () => ctx.topic('t'),
      qos: 1,
      fanOut: 1,
      count: qos1Counts[ctx.size],
      window: WINDOW,
    }),
};

export const qos1Persistent: Scenario = {
  name: 'qos1-persistent',
  describe: (size) =>
    `QoS 1 to a persistent-session subscriber (MQTT 5, Session Expiry ${SESSION_EXPIRY_SECONDS} s), up to ${n(qos1Counts[size])} messages, ${n(WINDOW)} in flight`,
  run: (ctx) =>
    publishToSubscribers(ctx, {
      subscribers: 1,
      filter: () => ctx.topic('t'),
      subscriberQos: 1,
      subscriberOptions: { protocolVersion: 5, clean: true, sessionExpiryInterval: SESSION_EXPIRY_SECONDS },
      topic: () => ctx.topic('t'),
      qos: 1,
      fanOut: 1,
      count: qos1Counts[ctx.size],
      window: WINDOW,
      cleanUp: endSession,
    }),
};

export const qos0Paced: Scenario = {
  name: 'qos0-paced',
  describe: (size) => `QoS 0, 1 -> 1 paced at ${n(PACED_RATE)} messages/s for ${pacedSeconds[size]} s: latency below saturation`,
  run: (ctx) =>
    publishToSubscribers(ctx, {
      subscribers: 1,
      filter: () => ctx.topic('t'),
      subscriberQos: 0,
      topic: () => ctx.topic('t'),
      qos: 0,
      fanOut: 1,
      count: PACED_RATE * pacedSeconds[ctx.size],
      window: WINDOW,
      ratePerSecond: PACED_RATE,
    }),
};

/** Connects once more with Clean Start and no expiry, so the persistent session ends with this connection. */
async function endSession(ctx: ScenarioContext): Promise<void> {
  const client = await BenchClient.connect(
    ctx.endpoint,
    { clientId: ctx.clientId('sub', 0), protocolVersion: 5, clean: true, sessionExpiryInterval: 0 },
    ctx.counters,
  );
  await client.disconnect();
}
