/**
 * What a web developer's page does, bundled with esbuild by the browser test: stock MQTT.js
 * with the adapter's createWebsocket. The test drives it through `window.door`.
 */
import mqtt from 'mqtt';
import { createWebsocket } from '../../web/adapter';

interface Received {
  topic: string;
  payload: string;
  qos: number;
}

const received: Received[] = [];
let client: ReturnType<typeof mqtt.connect> | undefined;

const door = {
  received,
  connect(url: string, protocolVersion: 4 | 5): Promise<{ maximumPacketSize?: number }> {
    return new Promise((resolve, reject) => {
      client = mqtt.connect(url, { createWebsocket, protocolVersion, reconnectPeriod: 0, connectTimeout: 10_000 });
      client.on('message', (topic, payload, packet) => received.push({ topic, payload: new TextDecoder().decode(payload), qos: packet.qos }));
      client.once('connect', (connack) => resolve({ ...(connack.properties?.maximumPacketSize !== undefined ? { maximumPacketSize: connack.properties.maximumPacketSize } : {}) }));
      client.once('error', (error) => reject(error.message));
    });
  },
  async subscribe(filter: string, qos: 0 | 1 | 2): Promise<number[]> {
    const granted = await client!.subscribeAsync(filter, { qos });
    return granted.map((g) => g.qos);
  },
  async publish(topic: string, payload: string, qos: 0 | 1 | 2): Promise<void> {
    await client!.publishAsync(topic, payload, { qos });
  },
  async end(): Promise<void> {
    await client?.endAsync();
  },
};

(window as unknown as { door: typeof door }).door = door;
