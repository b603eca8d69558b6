/**
 * A server-sent events stream outlives the keep-alive: the listener closes a connection silent
 * for 1.5 times it, and a stream's client sends nothing, so the stream pings for it, at least
 * twice a keep-alive. Here the broker holds every connection to 3 s (MQTT_MAX_KEEPALIVE), far
 * below the stream's 20 s heartbeat.
 */
import { describe, expect, it } from 'vitest';
import { connectClient, eventually, settle } from '../support/clients';
import { curlStream } from '../support/command-line-clients';
import { useHarness } from '../support/harness';

const harness = useHarness({ httpPort: 0, config: { maxKeepAlive: 3 } });

describe('GET /events and the keep-alive', () => {
  it('[MQTT-3.1.2-22] a stream open for three times 1.5 keep-alives still delivers: its pings keep the connection', async () => {
    const topic = `keepalive/${process.pid}`;
    // A CONNECT first warms the harness, so the stream's CONNACK comes within its keep-alive.
    await (await connectClient(harness().mqttUrl, { protocolVersion: 5 })).endAsync();
    const stream = await curlStream(`${harness().httpUrl}/events?filter=${encodeURIComponent(topic)}`);
    try {
      await settle(14_000);
      expect(stream.output()).toContain(': heartbeat');
      const publisher = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
      await publisher.publishAsync(topic, 'still here');
      await publisher.endAsync();
      await eventually(() => stream.output().includes('data: still here'), 'the event after the wait');
      expect(stream.output()).toContain(`event: ${topic}\n`);
    } finally {
      stream.stop();
    }
  }, 45_000);
});
