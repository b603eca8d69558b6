/**
 * The listener's own settings from environment variables, read once by its entry points (the
 * container, functions/listener/main.ts, and `npm start`). A bad value stops the entry point with
 * one line saying what to set.
 *
 *   MQTT_MAX_OUTBOUND_BUFFER          bytes a client may leave unread before it is closed (4194304)
 *   MQTT_MAX_CONNECT_PACKET_SIZE      the largest first packet (the CONNECT): what a socket may
 *                                     hold before anyone is authenticated (65536)
 *   MQTT_MAX_CONNECTIONS              device sockets one listener task holds (50000)
 *   MQTT_MAX_CONNECTIONS_PER_ADDRESS  device sockets from one client address on one task (1000)
 *   MQTT_BATCH_WINDOW_MS              how long a batch of packets waits for more connections' packets
 *                                     before the packet handler is invoked with it; 0: no wait,
 *                                     each connection's packets in their own invocation (50)
 *   MQTT_PROXY_PROTOCOL               true: sockets on the MQTT, MQTT over WebSocket and TLS ports begin
 *                                     with a PROXY protocol v2 header, whose source address is the
 *                                     client's (the NLB's target groups send it) (false)
 * and MQTT_MAX_PACKET_SIZE, MQTT_MAX_KEEPALIVE and MQTT_CONNECT_TIMEOUT_MS, as functions/security-config.ts
 * reads them.
 */
import type { ListenerLimits } from '../../shared/listener/listener';
import { booleanSetting, ConfigurationError, listenerLimitsFromEnv } from '../security-config';

type Env = Readonly<Record<string, string | undefined>>;

export interface ListenerSettings {
  /** Only the limits that are set; the listener's defaults hold for the rest. */
  readonly limits: Partial<ListenerLimits>;
  readonly proxyProtocol: boolean;
}

export function listenerSettingsFromEnv(env: Env): ListenerSettings {
  const entries: Array<[keyof ListenerLimits, number | undefined]> = [
    ['maxOutboundBytes', positiveInteger(env, 'MQTT_MAX_OUTBOUND_BUFFER')],
    ['maxConnectPacketSize', positiveInteger(env, 'MQTT_MAX_CONNECT_PACKET_SIZE')],
    ['maxConnections', positiveInteger(env, 'MQTT_MAX_CONNECTIONS')],
    ['maxConnectionsPerAddress', positiveInteger(env, 'MQTT_MAX_CONNECTIONS_PER_ADDRESS')],
    ['batchWindowMs', nonNegativeInteger(env, 'MQTT_BATCH_WINDOW_MS')],
  ];
  return {
    limits: { ...listenerLimitsFromEnv(env), ...Object.fromEntries(entries.filter(([, value]) => value !== undefined)) },
    proxyProtocol: booleanSetting(env, 'MQTT_PROXY_PROTOCOL', false),
  };
}

function positiveInteger(env: Env, name: string): number | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigurationError(`${name} must be a positive integer, got "${value}"`);
  return n;
}

function nonNegativeInteger(env: Env, name: string): number | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ConfigurationError(`${name} must be a whole number, 0 or more, got "${value}"`);
  return n;
}
