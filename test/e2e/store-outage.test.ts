/**
 * DynamoDB unreachable: the broker refuses new work with a reason code instead of hanging or
 * acknowledging what it cannot keep, and works again once DynamoDB is back. The harness reaches
 * DynamoDB Local through a TCP proxy that the test cuts (connections refused, or swallowed).
 */
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHarness, type Harness } from '../../local/harness';
import { ConnackReturnCode, ReasonCode } from '../../shared/protocol/reason-codes';
import { collect, connectClient, endAll, eventually, RawConnection } from '../support/clients';
import { TcpProxy } from '../../local/tcp-proxy';

let proxy: TcpProxy;
let harness: Harness;
let counter = 0;
const unique = (name: string): string => `${name}-${process.pid}-${++counter}`;
/** Attempts and timeouts of this harness's DynamoDB client: a swallowed request fails within 3 x 1.5 s plus backoff. */
const storeRetry = { maxAttempts: 3, connectionTimeoutMs: 500, requestTimeoutMs: 1500 };

beforeAll(async () => {
  const target = new URL(inject('dynamoDbEndpoint'));
  proxy = await new TcpProxy(target.hostname, Number(target.port)).start();
  harness = await startHarness({ dynamoDbEndpoint: proxy.endpoint, mqttPort: 0, wsPort: 0, apigwPort: 0, logLevel: 'error', storeRetry });
});

afterAll(async () => {
  await proxy.restore();
  await harness?.stop();
  await proxy.stop();
});

async function connect5(clientId: string): Promise<RawConnection> {
  const raw = await RawConnection.tcp(harness.mqttPort, 5);
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, clean: true, keepalive: 60 });
  return raw;
}

describe('DynamoDB unreachable', () => {
  for (const mode of ['refuse', 'blackhole'] as const) {
    it(`${mode}: [MQTT-3.2.2-6] a 5.0 CONNECT gets CONNACK 0x88 Server unavailable, a 3.1.1 CONNECT return code 3, without hanging`, async () => {
      await proxy.cut(mode);
      try {
        const raw5 = await connect5(unique('outage5'));
        const raw4 = await RawConnection.tcp(harness.mqttPort, 4);
        raw4.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: unique('outage4'), clean: true, keepalive: 60 });

        // Without hanging: the answer comes within the wait (the retries and timeouts bound it; how
        // fast is the benchmark's business, not this test's).
        const connack5 = (await raw5.next('connack', 20_000)) as IConnackPacket;
        const connack4 = (await raw4.next('connack', 20_000)) as IConnackPacket;
        expect(connack5.reasonCode).toBe(ReasonCode.ServerUnavailable);
        expect(connack5.sessionPresent).toBe(false);
        expect(connack4.returnCode).toBe(ConnackReturnCode.ServerUnavailable);
        await raw5.waitClosed();
        await raw4.waitClosed();
      } finally {
        await proxy.restore();
      }
    });
  }

  it('[MQTT-4.3.2-4] a QoS 1 PUBLISH the broker cannot store is not acknowledged: DISCONNECT 0x89 Server busy and the connection closes', async () => {
    const publisher = await connect5(unique('pub'));
    await publisher.next('connack');
    await proxy.cut('refuse');
    try {
      publisher.send({ cmd: 'publish', topic: 'outage/qos1', payload: Buffer.from('lost?'), qos: 1, messageId: 7, retain: false, dup: false });
      const disconnect = (await publisher.next('disconnect', 20_000)) as IDisconnectPacket;
      // 0x88 Server unavailable is a CONNACK code only (MQTT 5.0 3.14.2.1)
      expect(disconnect.reasonCode).toBe(ReasonCode.ServerBusy);
      await publisher.waitClosed();
      expect(publisher.packets.filter((p) => p.cmd === 'puback')).toEqual([]);
    } finally {
      await proxy.restore();
    }
  });

  it('once DynamoDB is back, a QoS 1 message refused during the outage is resent by its client and delivered once acknowledged', async () => {
    const topic = `outage/back/${unique('t')}`;
    const subscriber = await connectClient(harness.mqttUrl, { protocolVersion: 5, clientId: unique('sub'), clean: true });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    // A persistent session: MQTT.js keeps the unacknowledged PUBLISH and resends it on reconnect.
    const publisher = await connectClient(harness.mqttUrl, {
      protocolVersion: 5,
      clientId: unique('pub'),
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      reconnectPeriod: 200,
      // MQTT.js gives up after a refused CONNACK (0x88) unless told to keep trying.
      reconnectOnConnackError: true,
    });
    publisher.on('error', () => undefined); // the refused reconnects
    const disconnects: number[] = [];
    publisher.on('disconnect', (packet) => disconnects.push(packet.reasonCode ?? 0));
    let acknowledged = false;
    await proxy.cut('refuse');
    const publish = publisher.publishAsync(topic, 'refused then resent', { qos: 1 }).then(() => (acknowledged = true));
    try {
      await eventually(() => disconnects.length > 0, 'the DISCONNECT for the PUBLISH it cannot store');
      expect(disconnects[0]).toBe(ReasonCode.ServerBusy);
      await new Promise((resolve) => setTimeout(resolve, 500)); // reconnects are refused meanwhile
      expect(acknowledged).toBe(false);
      expect(received).toEqual([]);
    } finally {
      await proxy.restore();
    }
    await publish;
    await eventually(() => received.some((m) => m.payload === 'refused then resent'), 'the resent message');
    publisher.end(true);
    await endAll(subscriber);
  });

  it('a subscriber connected through the outage keeps its subscription (nothing was half written)', async () => {
    const topic = `outage/through/${unique('t')}`;
    const subscriber = await connectClient(harness.mqttUrl, { protocolVersion: 5, clientId: unique('sub'), clean: true });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    await proxy.cut('refuse');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await proxy.restore();
    const publisher = await connectClient(harness.mqttUrl, { protocolVersion: 5, clientId: unique('pub'), clean: true });
    await publisher.publishAsync(topic, 'through', { qos: 1 });
    await eventually(() => received.some((m) => m.payload === 'through'), 'the message to the subscriber that lived through the outage');
    expect(received.filter((m) => m.payload === 'through').length).toBe(1);
    await endAll(subscriber, publisher);
  });
});
