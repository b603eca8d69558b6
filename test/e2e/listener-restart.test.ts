/**
 * The harness's listener killed as SIGKILL kills a Fargate task (harness.killListener()) and a new
 * one started on the same ports (harness.restartListener()), as behind the load balancer: nothing
 * reports the lost connections, so the will waits for the sweeper; a persistent session queues
 * what is published meanwhile, and its client, reconnecting to the same URL, collects it.
 * The watcher and the publisher use the API Gateway door, which the kill leaves standing.
 */
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { useHarness } from '../support/harness';
import { collect, connectThroughApiGateway, endAll, eventually, settle } from '../support/clients';

// The test runs the sweeper itself.
const useTestHarness = useHarness({ sweepIntervalMs: 3_600_000 });

describe('the listener killed and restarted on the same ports', () => {
  it('[MQTT-3.1.2-8] the will is published once the sweeper runs, and the subscriber reconnects to collect what was published while it was away', async () => {
    const harness = useTestHarness();
    const id = `${process.pid}-${Date.now()}`;
    const willTopic = `restart/will/${id}`;
    const topic = `restart/queue/${id}`;
    const watcher = await connectThroughApiGateway(harness.apigwUrl, { protocolVersion: 5, clientId: `watcher-${id}`, clean: true });
    const wills = collect(watcher);
    await watcher.subscribeAsync(willTopic, { qos: 1 });

    const subscriber = mqtt.connect(harness.mqttUrl, {
      protocolVersion: 5,
      clientId: `subscriber-${id}`,
      clean: false,
      properties: { sessionExpiryInterval: 600 },
      will: { topic: willTopic, payload: Buffer.from('subscriber lost'), qos: 1, retain: false },
      reconnectPeriod: 200,
      resubscribe: false,
    });
    subscriber.on('error', () => undefined);
    const received = collect(subscriber);
    const connacks: boolean[] = [];
    subscriber.on('connect', (connack) => connacks.push(connack.sessionPresent));
    await eventually(() => connacks.length === 1, 'the subscriber to connect');
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const deliveryEndpoint = harness.deliveryEndpoint;

    await harness.killListener();
    await eventually(() => !subscriber.connected, 'the subscriber to see its connection gone');
    // Nothing told the broker: a reported close would publish the will (no delay) by now.
    await settle(1000);
    expect(wills).toEqual([]);

    const swept = await harness.sweep();
    expect(swept.ended).toBeGreaterThanOrEqual(1);
    await eventually(() => wills.length > 0, 'the will of the subscriber on the killed listener');
    expect(wills.map((m) => m.payload)).toEqual(['subscriber lost']);

    const publisher = await connectThroughApiGateway(harness.apigwUrl, { protocolVersion: 5, clientId: `publisher-${id}`, clean: true });
    await publisher.publishAsync(topic, 'while away', { qos: 1 });

    await harness.restartListener();
    expect(harness.deliveryEndpoint).not.toBe(deliveryEndpoint);
    await eventually(() => received.length > 0, 'the message published while the subscriber was away', 20_000);
    expect(received.map((m) => m.payload)).toEqual(['while away']);
    expect(connacks.slice(1)).toContain(true);
    expect(wills.length).toBe(1);
    await endAll(subscriber, publisher, watcher);
  }, 60_000);
});
