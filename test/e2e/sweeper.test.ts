/**
 * The sweeper ends connections whose close never reached the broker: a browser whose
 * `$disconnect` API Gateway lost (the emulator drops every one here), and a device whose
 * listener task vanished. Connections that are still there are left alone.
 */
import { describe, expect, it } from 'vitest';
import { newListenerConnectionId } from '../../shared/gateway/connection-id';
import { collect, connectClient, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';
import { freePort } from '../../local/free-port';

let counter = 0;
const unique = (name: string): string => `${name}-${process.pid}-${++counter}`;

async function browser(url: string, clientId: string, topic: string): Promise<RawConnection> {
  const door = await RawConnection.apiGateway(url, 4);
  door.send(
    { cmd: 'connect', clientId, protocolVersion: 4, clean: true, keepalive: 60 },
    { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] },
  );
  await door.next('suback');
  return door;
}

describe('sweeper, run on demand', () => {
  const harness = useHarness({ apigw: { dropDisconnect: true } });

  it('ends a browser connection whose $disconnect never came, and its session; a live one is left alone', async () => {
    const topic = unique('swept');
    const goneId = unique('gone');
    const gone = await browser(harness().apigwUrl, goneId, topic);
    const liveId = unique('live');
    const live = await browser(harness().apigwUrl, liveId, topic);
    gone.close();
    await gone.waitClosed();
    await settle(200);
    // No $disconnect: the broker still takes the connection for open.
    expect((await harness().store.sessions.getSessions([goneId])).get(goneId)?.connectionId).toBeDefined();

    await harness().sweep();

    expect((await harness().store.sessions.getSessions([goneId])).has(goneId)).toBe(false);
    expect((await harness().store.subscriptions.findSubscriptions(topic)).map((s) => s.clientId)).toEqual([liveId]);
    // the live browser still gets its messages
    const device = await connectClient(harness().mqttUrl);
    await device.publishAsync(topic, 'still there', { qos: 1 });
    await eventually(() => live.packets.some((p) => p.cmd === 'publish'), 'the message at the live browser');
    expect(live.closed).toBe(false);
    await device.endAsync();
    live.close();
  });

  it('ends a device connection whose listener task is unreachable', async () => {
    const clientId = unique('orphan');
    // A listener task that registered and is no more: nothing listens at its delivery endpoint.
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    await harness().directory.recordHeartbeat(endpoint, Date.now());
    const connectionId = newListenerConnectionId(endpoint);
    // The client's limits as a 3.1.1 client has them (fields the store may or may not take).
    const session = { clientId, connectionId, protocolVersion: 4 as const, cleanStart: true, receiveMaximum: 65535, topicAliasMaximum: 0, holdMs: 30_000 };
    await harness().store.sessions.openSession(session);
    await harness().store.connections.putConnection({ connectionId, clientId, protocolVersion: 4, keepalive: 60, cleanStart: true, sessionExpiryInterval: 0, connectedAt: Date.now() });
    const device = await connectClient(harness().mqttUrl);
    const got = collect(device);
    const topic = unique('device-alive');
    await device.subscribeAsync(topic);

    await harness().sweep();

    expect(await harness().store.connections.getConnection(connectionId)).toBeUndefined();
    expect((await harness().store.sessions.getSessions([clientId])).has(clientId)).toBe(false);
    // the device on the running listener is untouched
    await device.publishAsync(topic, 'fine', { qos: 1 });
    await eventually(() => got.length === 1, 'the live device to keep its service');
    await device.endAsync();
  });
});

describe('sweeper, on its schedule', () => {
  const harness = useHarness({ apigw: { dropDisconnect: true }, sweepIntervalMs: 200 });

  it('the harness runs it every sweepIntervalMs', async () => {
    const clientId = unique('scheduled');
    const door = await browser(harness().apigwUrl, clientId, unique('scheduled'));
    door.close();
    const deadline = Date.now() + 10_000;
    while ((await harness().store.sessions.getSessions([clientId])).has(clientId)) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the sweeper to end the session');
      await settle(50);
    }
  });
});
