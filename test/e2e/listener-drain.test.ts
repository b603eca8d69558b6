/**
 * The listener stopping (SIGTERM on Fargate, Ctrl-C locally) with clients connected: 5.0 clients
 * are told why before their connection closes, so they reconnect to another task; every close
 * still reaches the handler, which ends the clean sessions.
 */
import type { IDisconnectPacket } from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { startHarness, type Harness } from '../../local/harness';
import { ReasonCode } from '../../shared/protocol/reason-codes';
import { connectClient, eventually, RawConnection } from '../support/clients';

let harness: Harness | undefined;
let stopped = false;
let counter = 0;
const unique = (name: string): string => `${name}-${process.pid}-${++counter}`;

beforeEach(async () => {
  stopped = false;
  harness = await startHarness({ dynamoDbEndpoint: inject('dynamoDbEndpoint'), mqttPort: 0, wsPort: 0, apigwPort: 0, logLevel: 'error' });
});

afterEach(async () => {
  if (!stopped) await harness?.stop();
});

async function stopListener(): Promise<void> {
  stopped = true;
  await harness!.stop();
}

/** What a client observed: the DISCONNECT packets the server sent, and whether the connection closed. */
function watch(client: MqttClient): { disconnects: IDisconnectPacket[]; closed: () => boolean } {
  const disconnects: IDisconnectPacket[] = [];
  let closed = false;
  client.on('disconnect', (packet) => disconnects.push(packet));
  client.on('close', () => (closed = true));
  return { disconnects, closed: () => closed };
}

describe('listener drain', () => {
  for (const door of ['TCP', 'WebSocket'] as const) {
    it(`[MQTT-3.14.0-1] [MQTT-3.14.4-2] ${door}, MQTT 5.0: DISCONNECT 0x8B (Server shutting down), then the connection closes`, async () => {
      const clientId = unique('drain5');
      const url = door === 'TCP' ? harness!.mqttUrl : harness!.wsUrl;
      const client = await connectClient(url, { protocolVersion: 5, clientId, clean: true });
      const seen = watch(client);

      await stopListener();

      await eventually(() => seen.closed(), 'the connection to close');
      expect(seen.disconnects.map((p) => p.reasonCode)).toEqual([ReasonCode.ServerShuttingDown]);
      client.end(true);
    });
  }

  it('MQTT 3.1.1: the connection just closes (3.1.1 has no server DISCONNECT)', async () => {
    const client = await connectClient(harness!.mqttUrl, { protocolVersion: 4, clientId: unique('drain4') });
    const seen = watch(client);
    let bytesAfterConnack = 0;
    client.stream.on('data', (chunk: Buffer) => (bytesAfterConnack += chunk.length));

    await stopListener();

    await eventually(() => seen.closed(), 'the connection to close');
    expect(seen.disconnects).toEqual([]);
    expect(bytesAfterConnack).toBe(0);
    client.end(true);
  });

  it('[MQTT-3.14.0-1] a 5.0 connection without an accepted CONNECT hears no DISCONNECT', async () => {
    const raw = await RawConnection.tcp(harness!.mqttPort, 5);

    await stopListener();

    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
  });

  it('reports every close to the handler: clean sessions end once the listener has stopped', async () => {
    const ids = [unique('end5'), unique('end4')];
    const clients = [
      await connectClient(harness!.mqttUrl, { protocolVersion: 5, clientId: ids[0], clean: true }),
      await connectClient(harness!.wsUrl, { protocolVersion: 4, clientId: ids[1], clean: true }),
    ];
    expect([...(await harness!.store.sessions.getSessions(ids)).keys()].sort()).toEqual([...ids].sort());

    await stopListener();

    expect((await harness!.store.sessions.getSessions(ids)).size).toBe(0);
    for (const client of clients) client.end(true);
  });
});
