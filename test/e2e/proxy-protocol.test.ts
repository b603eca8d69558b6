/**
 * The TCP door behind a load balancer that speaks PROXY protocol v2 (the NLB, with
 * proxy_protocol_v2 on its target group): MQTT.js clients whose sockets begin with a v2 header
 * are served as usual; the header's source address is the client's address for the
 * per-address cap and in the delivery endpoint's GET (Identity.SourceIp); a socket without the
 * header is closed.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually } from '../support/clients';
import { useHarness } from '../support/harness';
import { clientBehindProxy } from '../support/proxy-header';
import { signedFetch } from '../support/signed-fetch';

const harness = useHarness({ listener: { proxyProtocol: true, maxConnectionsPerAddress: 2 } });
const clients: MqttClient[] = [];
afterAll(() => endAll(...clients));

let counter = 0;
/** MQTT.js over a socket that sends the PROXY header before MQTT; resolves at CONNACK, rejects if closed first. */
async function connectFrom(source: string, options: IClientOptions = {}): Promise<MqttClient> {
  const opts: IClientOptions = { reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 5, clientId: `proxied-${process.pid}-${++counter}`, ...options };
  const client = clientBehindProxy(harness().mqttPort, source, opts);
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return client;
}

async function sourceIpOf(clientId: string): Promise<string> {
  const session = (await harness().store.sessions.getSessions([clientId])).get(clientId);
  const response = await signedFetch(harness().deliverySecret, `${harness().deliveryEndpoint}/@connections/${encodeURIComponent(session!.connectionId!)}`);
  return ((await response.json()) as { Identity: { SourceIp: string } }).Identity.SourceIp;
}

describe('PROXY protocol v2 on the TCP door', () => {
  it('clients behind the header are served, and each is known by the header source address', async () => {
    const subscriber = await connectFrom('203.0.113.7');
    const publisher = await connectFrom('198.51.100.9');
    const seen = collect(subscriber);
    await subscriber.subscribeAsync('proxied/topic', { qos: 1 });
    await publisher.publishAsync('proxied/topic', 'through the load balancer', { qos: 1 });
    await eventually(() => seen.some((m) => m.payload === 'through the load balancer'), 'the message');
    expect(await sourceIpOf(subscriber.options.clientId!)).toBe('203.0.113.7');
    expect(await sourceIpOf(publisher.options.clientId!)).toBe('198.51.100.9');
  });

  it('the per-address cap counts the header source: a third client from one address is refused, other addresses are not', async () => {
    const first = await connectFrom('192.0.2.50');
    await connectFrom('192.0.2.50');
    await expect(connectFrom('192.0.2.50')).rejects.toThrow();
    const elsewhere = await connectFrom('192.0.2.51');
    expect(first.connected && elsewhere.connected).toBe(true);
    expect(harness().listenerStats().refused.address).toBeGreaterThanOrEqual(1);
  });

  it('a client that sends MQTT without the header is closed before CONNACK', async () => {
    const refusedBefore = harness().listenerStats().refused.proxyHeader;
    await expect(connectClient(harness().mqttUrl, { clientId: `unproxied-${process.pid}` })).rejects.toThrow();
    expect(harness().listenerStats().refused.proxyHeader).toBe(refusedBefore + 1);
  });
});
