/**
 * A client that stops reading costs the listener at most its outbound limit: the write that
 * would pass the limit closes the connection instead (reported to the handler as any close), the
 * delivery endpoint answers for it as API Gateway does for a gone connection, and the other
 * connections are served as before. On both of the listener's doors, driven through the
 * delivery endpoint as the handlers drive it; the listener alone, with a recording handler.
 */
import mqttPacket from 'mqtt-packet';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createJsonLogger } from '../../shared/util/logger';
import { encodeDeliveryBatch } from '../../shared/gateway/delivery-batch';
import { perConnection, type OneConnectionEvent } from '../support/listener-events';
import { MqttListener } from '../../shared/listener/listener';
import { eventually } from '../support/clients';
import { signedFetch, testDeliverySecret } from '../support/signed-fetch';

const deliverySecret = testDeliverySecret();

const MAX_OUTBOUND = 1024 * 1024;
const PAYLOAD = 256 * 1000;
const MESSAGES = 200;

const events: OneConnectionEvent[] = [];
const listener = new MqttListener({
  host: '127.0.0.1',
  mqttPort: 0,
  wsPort: 0,
  deliveryPort: 0,
  advertisedHost: '127.0.0.1',
  deliverySecret,
  sink: { invoke: async (event) => void events.push(...perConnection(event)) },
  log: createJsonLogger('silent'),
  limits: { maxOutboundBytes: MAX_OUTBOUND },
});
let ports: { mqttPort: number; wsPort: number; deliveryEndpoint: string };

beforeAll(async () => {
  ports = await listener.start();
});
afterAll(async () => {
  await listener.stop(1_000);
});

const connack = mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false });
const publish = mqttPacket.generate({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(PAYLOAD, 7), qos: 0, dup: false, retain: false });

/** A client that reads until told to stop: bytes counted, pause() and resume(), closed once its connection is gone. */
interface TestClient {
  readonly connectionId: string;
  received: number;
  closed: boolean;
  pause(): void;
  resume(): void;
  end(): void;
}

let clients = 0;
async function connect(door: 'tcp' | 'websocket'): Promise<TestClient> {
  const before = events.length;
  const bytes = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: `slow-${++clients}` });
  const client: Omit<TestClient, 'connectionId'> & { connectionId?: string } = { received: 0, closed: false, pause() {}, resume() {}, end() {} };
  if (door === 'tcp') {
    const socket = net.connect(ports.mqttPort, '127.0.0.1');
    socket.on('data', (chunk: Buffer) => (client.received += chunk.length));
    socket.on('error', () => undefined); // a reset, once the listener gives up on it
    socket.on('close', () => (client.closed = true));
    socket.write(bytes);
    Object.assign(client, { pause: () => socket.pause(), resume: () => socket.resume(), end: () => socket.destroy() });
  } else {
    const ws = new WebSocket(`ws://127.0.0.1:${ports.wsPort}/mqtt`, 'mqtt');
    ws.on('message', (data: Buffer) => (client.received += data.length));
    ws.on('error', () => undefined);
    ws.on('close', () => (client.closed = true));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(bytes);
    Object.assign(client, { pause: () => ws.pause(), resume: () => ws.resume(), end: () => ws.terminate() });
  }
  const connectEvent = (): OneConnectionEvent | undefined => events.slice(before).find((e) => e.type === 'packets');
  await eventually(() => connectEvent() !== undefined, 'the CONNECT to reach the handler');
  client.connectionId = connectEvent()!.connectionId;
  await post(client.connectionId, connack);
  await eventually(() => client.received >= connack.length, 'the CONNACK');
  return client as TestClient;
}

async function post(connectionId: string, body: Buffer): Promise<number> {
  const response = await signedFetch(deliverySecret, `${ports.deliveryEndpoint}/@connections/${encodeURIComponent(connectionId)}`, { method: 'POST', body });
  await response.arrayBuffer();
  return response.status;
}

describe('a client that stops reading', () => {
  for (const door of ['tcp', 'websocket'] as const) {
    it(`${door}: is closed once its unread bytes would pass the limit; the delivery endpoint then answers 410; a bystander is served throughout`, async () => {
      const slow = await connect(door);
      const bystander = await connect(door);
      const slowReadersBefore = listener.stats().slowReadersClosed;
      slow.pause();

      const statuses: number[] = [];
      for (let i = 0; i < MESSAGES; i++) {
        statuses.push(await post(slow.connectionId, publish));
        if (i % 20 === 0) expect(await post(bystander.connectionId, publish)).toBe(200);
      }
      // Accepted until the limit, then gone for good.
      const firstGone = statuses.indexOf(410);
      expect(firstGone).toBeGreaterThan(0);
      expect(statuses.slice(0, firstGone).every((status) => status === 200)).toBe(true);
      expect(statuses.slice(firstGone).every((status) => status === 410)).toBe(true);

      const stats = listener.stats();
      expect(stats.slowReadersClosed).toBe(slowReadersBefore + 1);
      // The bounded figure: never more than the limit held for a client, and the slow one came close to it.
      expect(stats.peakOutboundBytes).toBeLessThanOrEqual(MAX_OUTBOUND);
      expect(stats.peakOutboundBytes).toBeGreaterThan(MAX_OUTBOUND - publish.length - 16);

      // Reported to the handler as any close is, with the reason.
      await eventually(() => events.some((e) => e.type === 'closed' && e.connectionId === slow.connectionId), 'the close report');
      expect(events.find((e) => e.type === 'closed' && e.connectionId === slow.connectionId)).toMatchObject({ reason: expect.stringMatching(/not reading/) });
      const at = `${ports.deliveryEndpoint}/@connections/${encodeURIComponent(slow.connectionId)}`;
      expect((await signedFetch(deliverySecret, at)).status).toBe(410);
      const batch = await signedFetch(deliverySecret, `${ports.deliveryEndpoint}/@connections`, {
        method: 'POST',
        body: encodeDeliveryBatch([[slow.connectionId, Buffer.from([0xd0, 0])]]),
      });
      expect(await batch.json()).toEqual({ gone: [slow.connectionId] });

      // The client, once it looks, finds its connection gone, short of what was sent.
      slow.resume();
      await eventually(() => slow.closed, 'the slow client to see its connection closed');
      expect(slow.received).toBeLessThan(MESSAGES * publish.length);

      // The bystander got everything sent to it, and still does.
      expect(await post(bystander.connectionId, connack)).toBe(200);
      await eventually(() => bystander.received === connack.length + (MESSAGES / 20) * publish.length + connack.length, 'the bystander to read all');
      expect(bystander.closed).toBe(false);
      bystander.end();
    });
  }
});
