/** The listener's settings from the environment: what is set overrides the listener's defaults; a bad value says what to set. */
import { describe, expect, it } from 'vitest';
import { listenerSettingsFromEnv } from '../../functions/listener/listener-settings';
import { ConfigurationError } from '../../functions/security-config';

describe('listenerSettingsFromEnv', () => {
  it('sets nothing when nothing is set: the listener keeps its defaults, without PROXY protocol', () => {
    expect(listenerSettingsFromEnv({})).toEqual({ limits: {}, proxyProtocol: false });
  });

  it('reads the outbound buffer, CONNECT size, connection caps, PROXY protocol, and the shared packet size, maximum keep-alive and deadline', () => {
    const settings = listenerSettingsFromEnv({
      MQTT_MAX_OUTBOUND_BUFFER: '1048576',
      MQTT_MAX_CONNECT_PACKET_SIZE: '4096',
      MQTT_MAX_CONNECTIONS: '20000',
      MQTT_MAX_CONNECTIONS_PER_ADDRESS: '50',
      MQTT_PROXY_PROTOCOL: 'true',
      MQTT_MAX_PACKET_SIZE: '131072',
      MQTT_CONNECT_TIMEOUT_MS: '5000',
      MQTT_MAX_KEEPALIVE: '60',
    });
    expect(settings).toEqual({
      limits: {
        maxOutboundBytes: 1048576,
        maxConnectPacketSize: 4096,
        maxConnections: 20000,
        maxConnectionsPerAddress: 50,
        maximumPacketSize: 131072,
        connectTimeoutMs: 5000,
        maxKeepAlive: 60,
      },
      proxyProtocol: true,
    });
  });

  it('refuses values that are not positive integers, or not true/false, naming the variable', () => {
    for (const [name, value] of [
      ['MQTT_MAX_OUTBOUND_BUFFER', '4MB'],
      ['MQTT_MAX_CONNECT_PACKET_SIZE', '0'],
      ['MQTT_MAX_CONNECTIONS', '-1'],
      ['MQTT_MAX_CONNECTIONS_PER_ADDRESS', '1.5'],
      ['MQTT_PROXY_PROTOCOL', 'maybe'],
    ] as const) {
      expect(() => listenerSettingsFromEnv({ [name]: value })).toThrow(ConfigurationError);
      expect(() => listenerSettingsFromEnv({ [name]: value })).toThrow(name);
    }
  });
});
