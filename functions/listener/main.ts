/**
 * The Fargate container: the device listener. Holds sockets, frames packets, invokes the packet
 * handler Lambda, and serves the delivery endpoint on the task's private address.
 * Environment: PACKET_HANDLER_FUNCTION (required), MQTT_PORT (1883), MQTT_WS_PORT (8083),
 * DELIVERY_PORT (8090), ADVERTISED_HOST (default: the task's IPv4 from ECS metadata), LOG_LEVEL,
 * LISTEN_HOST (0.0.0.0).
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createJsonLogger, type LogLevel } from '../../shared/util/logger';
import { LambdaPacketSink } from '../../shared/listener/lambda-sink';
import { MqttListener } from '../../shared/listener/listener';
import { listenerLimitsFromEnv } from '../security-config';

const env = process.env;
const log = createJsonLogger((env.LOG_LEVEL as LogLevel | undefined) ?? 'info');

const functionName = env.PACKET_HANDLER_FUNCTION;
if (!functionName) {
  log.error('PACKET_HANDLER_FUNCTION is not set: the listener needs the packet handler Lambda to invoke');
  process.exit(1);
}

const listener = new MqttListener({
  host: env.LISTEN_HOST ?? '0.0.0.0',
  mqttPort: Number(env.MQTT_PORT ?? 1883),
  wsPort: Number(env.MQTT_WS_PORT ?? 8083),
  deliveryPort: Number(env.DELIVERY_PORT ?? 8090),
  advertisedHost: env.ADVERTISED_HOST ?? (await taskAddress()),
  sink: new LambdaPacketSink(new LambdaClient({}), functionName),
  log,
  // MQTT_MAX_PACKET_SIZE (as the handlers have it) and MQTT_CONNECT_TIMEOUT_MS
  limits: listenerLimitsFromEnv(env),
});
const addresses = await listener.start();

// ECS sends SIGTERM when it stops the task (a deployment, scale-in) and SIGKILL after the task
// definition's stopTimeout (30 s, infra/constructs/device-listener.ts). Drain well inside that:
// clients hear the server is going and reconnect through the load balancer to another task.
// Installed before the task says it has started, so a SIGTERM right after is drained too.
const DRAIN_MS = 20_000;
process.once('SIGTERM', () => {
  log.info('SIGTERM: draining connections', { drainMs: DRAIN_MS });
  void listener.stop(DRAIN_MS).then(() => process.exit(0));
});
log.info('listener started', { ...addresses });

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
