/**
 * The listener task's own CloudWatch metrics: what the stack's autoscaling reads
 * (infra/constructs/listener-scaling.ts) and what the task writes (task-metrics.ts), named once
 * so the two cannot drift. Pure data: the CDK app reads it without the runtime.
 */
export const LISTENER_METRICS = {
  namespace: 'MqttBroker/Listener',
  /** The dimension every datapoint carries; its value names the service (the ECS cluster's name). */
  dimension: 'Cluster',
  /** Open device sockets on the task when it reports. */
  connections: 'Connections',
  /** Packet-handler invocations in flight on the task, averaged over the report's minute. */
  inFlightInvocations: 'InFlightInvocations',
  /** How often a task reports, and the metrics' period. */
  periodSeconds: 60,
  /** The environment variable through which the task learns the dimension's value; no metrics without it. */
  envVar: 'LISTENER_METRICS_CLUSTER',
} as const;
