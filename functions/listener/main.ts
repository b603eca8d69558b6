/**
 * The Fargate container: the device listener. Holds sockets, frames packets, invokes the packet
 * handler Lambda, and serves the delivery endpoint on the task's private address.
 * Environment: PACKET_HANDLER_FUNCTION (required), MQTT_PORT (1883), MQTT_WS_PORT (8083),
 * DELIVERY_PORT (8090), DELIVERY_SECRET (required: the secret the handlers sign deliveries with,
 * injected by ECS from Secrets Manager), ADVERTISED_HOST (default: the task's IPv4 from ECS
 * metadata), LOG_LEVEL, LISTEN_HOST (0.0.0.0), LISTENER_METRICS_CLUSTER (the cluster's name:
 * with it, the task reports what autoscaling reads, shared/listener/task-metrics.ts), and the
 * limits and MQTT_PROXY_PROTOCOL of ./listener-settings.ts. MQTT_TLS_PORT: MQTT over TLS there,
 * with MQTT_TLS_CERT and MQTT_TLS_KEY (required with it) and device certificates when
 * MQTT_TLS_CLIENT_CA is set (./tls-settings.ts); the stack sets them when devices present
 * certificates (the NLB passes TLS through to this port).
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createJsonLogger, type LogLevel } from '../../shared/util/logger';
import { MIN_DELIVERY_SECRET_LENGTH } from '../../shared/gateway/delivery-signature';
import { LambdaPacketSink, listenerLambdaClientConfig } from '../../shared/listener/lambda-sink';
import { MqttListener } from '../../shared/listener/listener';
import { LISTENER_METRICS } from '../../shared/listener/listener-metrics';
import { CountingSink, reportTaskMetrics } from '../../shared/listener/task-metrics';
import { ConfigurationError } from '../security-config';
import { listenerSettingsFromEnv, type ListenerSettings } from './listener-settings';
import { tlsSettingsFromEnv, type TlsSettings } from './tls-settings';

const env = process.env;
const log = createJsonLogger((env.LOG_LEVEL as LogLevel | undefined) ?? 'info');

const functionName = env.PACKET_HANDLER_FUNCTION;
if (!functionName) {
  log.error('PACKET_HANDLER_FUNCTION is not set: the listener needs the packet handler Lambda to invoke');
  process.exit(1);
}
const deliverySecret = env.DELIVERY_SECRET ?? '';
if (deliverySecret.length < MIN_DELIVERY_SECRET_LENGTH) {
  log.error(`DELIVERY_SECRET must hold the delivery secret (at least ${MIN_DELIVERY_SECRET_LENGTH} characters): the delivery endpoint accepts only requests signed with it`);
  process.exit(1);
}

let settings: ListenerSettings;
let tlsSettings: TlsSettings;
const tlsPort = env.MQTT_TLS_PORT ? Number(env.MQTT_TLS_PORT) : undefined;
try {
  settings = listenerSettingsFromEnv(env);
  tlsSettings = tlsSettingsFromEnv(env);
  if (tlsPort !== undefined && (!Number.isInteger(tlsPort) || tlsPort < 0 || tlsPort > 65535)) throw new ConfigurationError(`MQTT_TLS_PORT must be a port number, got "${env.MQTT_TLS_PORT}"`);
  if (tlsPort !== undefined && !tlsSettings.server) throw new ConfigurationError('MQTT_TLS_PORT needs MQTT_TLS_CERT and MQTT_TLS_KEY (the server certificate and key)');
  if (tlsPort === undefined && tlsSettings.clientCertificates) throw new ConfigurationError('MQTT_TLS_CLIENT_CA needs MQTT_TLS_PORT (the port devices with certificates connect to)');
} catch (error) {
  log.error(error instanceof ConfigurationError ? error.message : String(error));
  process.exit(1);
}

// Counted, so the task can report its invocations in flight (one of the two things that bind it).
const sink = new CountingSink(new LambdaPacketSink(new LambdaClient(listenerLambdaClientConfig()), functionName));
const listener = new MqttListener({
  host: env.LISTEN_HOST ?? '0.0.0.0',
  mqttPort: Number(env.MQTT_PORT ?? 1883),
  wsPort: Number(env.MQTT_WS_PORT ?? 8083),
  deliveryPort: Number(env.DELIVERY_PORT ?? 8090),
  advertisedHost: env.ADVERTISED_HOST ?? (await taskAddress()),
  deliverySecret,
  sink,
  log,
  // MQTT_MAX_PACKET_SIZE and MQTT_MAX_KEEPALIVE (as the handlers have them), MQTT_CONNECT_TIMEOUT_MS, and the listener's own
  limits: settings.limits,
  proxyProtocol: settings.proxyProtocol,
  ...(tlsPort !== undefined && tlsSettings.server
    ? { tls: { port: tlsPort, ...tlsSettings.server, ...(tlsSettings.clientCertificates ? { clientCertificates: tlsSettings.clientCertificates } : {}) } }
    : {}),
});
const addresses = await listener.start();
const metricsCluster = env[LISTENER_METRICS.envVar];
const metrics = metricsCluster ? reportTaskMetrics({ cluster: metricsCluster, sink, connections: () => listener.stats().openSockets }) : undefined;

// ECS sends SIGTERM when it stops the task (a deployment, scale-in) and SIGKILL after the task
// definition's stopTimeout (120 s, ECS's most, infra/constructs/device-listener.ts). Drain well
// inside that: clients hear the server is going, in waves over the first minute, and reconnect
// through the load balancer to the other tasks, which take them at a steady pace instead of all
// at once. Installed before the task says it has started, so a SIGTERM right after is drained too.
const DRAIN_MS = 100_000;
const DRAIN_SPREAD_MS = 60_000;
process.once('SIGTERM', () => {
  log.info('SIGTERM: draining connections', { drainMs: DRAIN_MS, spreadMs: DRAIN_SPREAD_MS });
  // The draining task reports no more: its falling count must not read as the service's load.
  metrics?.stop();
  void listener.stop(DRAIN_MS, DRAIN_SPREAD_MS).then(() => process.exit(0));
});
log.info('listener started', {
  ...addresses,
  proxyProtocol: settings.proxyProtocol,
  ...(tlsSettings.clientCertificates ? { deviceCertificates: tlsSettings.clientCertificates.identity } : {}),
  ...settings.limits,
});

/** The task's private IPv4, from the ECS task metadata endpoint (v4). */
async function taskAddress(): Promise<string> {
  const metadata = env.ECS_CONTAINER_METADATA_URI_V4;
  if (!metadata) throw new Error('set ADVERTISED_HOST, or run on ECS where ECS_CONTAINER_METADATA_URI_V4 is set');
  const response = await fetch(`${metadata}/task`);
  const task = (await response.json()) as { Containers?: Array<{ Networks?: Array<{ IPv4Addresses?: string[] }> }> };
  const address = task.Containers?.[0]?.Networks?.[0]?.IPv4Addresses?.[0];
  if (!address) throw new Error('no IPv4 address in the ECS task metadata');
  return address;
}
