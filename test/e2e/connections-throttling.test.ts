/**
 * API Gateway's @connections rate (the account's, shared by every API) against a burst: with the
 * emulator answering 429 LimitExceededException over 4 requests a second, twelve QoS 0 messages
 * published at once to one browser subscriber (twelve handlers, twelve PostToConnection calls)
 * all arrive. The SDK's default retry (3 attempts, waits of up to 1 and 2 s) ends within 3 s, in
 * which at most 12 calls of the burst and the retries can pass the limiter only by luck; the
 * broker's (shared/gateway/connections-api.ts CONNECTIONS_RETRY) keeps trying for up to 6 s.
 */
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, connectThroughApiGateway, eventually, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const RATE = 4;
const BURST = 12;

describe('@connections throttling', () => {
  const harness = useHarness({ apigw: { connectionsRequestsPerSecond: RATE } });
  const clients: MqttClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
  });

  it(`a burst of ${BURST} QoS 0 messages to a browser subscriber over a rate of ${RATE}/s: every message arrives`, async () => {
    const topic = `burst/${randomBytes(3).toString('hex')}`;
    const subscriber = await connectThroughApiGateway(harness().apigwUrl);
    clients.push(subscriber);
    const received = collect(subscriber);
    await subscriber.subscribeAsync(topic, { qos: 0 });
    // Each publisher's CONNACK is an @connections call: connected at the rate, so none waits on another.
    const publishers: MqttClient[] = [];
    for (let i = 0; i < BURST; i++) {
      publishers.push(await connectThroughApiGateway(harness().apigwUrl));
      await settle(1000 / RATE + 20);
    }
    clients.push(...publishers);
    await settle(1100);
    const throttledBefore = harness().meters.limits.snapshot().refused['apigw.throttled'] ?? 0;
    // One message from each: a `$default` invocation each, so one PostToConnection each to the subscriber.
    await Promise.all(publishers.map((publisher, i) => publisher.publishAsync(topic, `m${i}`, { qos: 0 })));
    await eventually(() => received.length >= BURST, `${BURST} messages (got ${received.length})`, 20_000).catch(() => undefined);
    const throttled = (harness().meters.limits.snapshot().refused['apigw.throttled'] ?? 0) - throttledBefore;
    expect(throttled, 'the burst met the rate limit').toBeGreaterThan(0);
    expect(received.map((message) => message.payload).sort()).toEqual(publishers.map((_, i) => `m${i}`).sort());
  }, 60_000);
});
