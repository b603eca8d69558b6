/**
 * What traffic would cost on AWS at list prices: pure arithmetic over what the benchmark
 * measured (requests, capacity units, bytes, connections) and a few stated assumptions (Lambda
 * memory, the steady rate that fixed costs are spread over, the listener's task size).
 * Every figure is US dollars per million delivered messages, or per million connection-minutes.
 */

/** Unit prices in US dollars (us-east-1, arm64 where it applies). */
export interface Prices {
  readonly apiGatewayWebSocket: { readonly perMillionMessages: number; readonly messageMeterBytes: number; readonly perMillionConnectionMinutes: number };
  readonly lambda: { readonly perMillionRequests: number; readonly perGbSecond: number };
  readonly dynamoDb: { readonly perMillionWriteUnits: number; readonly perMillionReadUnits: number };
  readonly fargate: { readonly perVcpuHour: number; readonly perGbHour: number };
  /** One NLCU is the largest of its dimensions; these are the TLS listener's (the NLB terminates TLS on 8883). */
  readonly nlb: {
    readonly perHour: number;
    readonly perNlcuHour: number;
    readonly nlcuNewConnectionsPerSecond: number;
    readonly nlcuActiveConnections: number;
    readonly nlcuGbPerHour: number;
  };
  readonly iotCore: { readonly perMillionMessages: number; readonly messageMeterBytes: number; readonly perMillionConnectionMinutes: number };
}

export const AWS_LIST_PRICES: Prices = {
  apiGatewayWebSocket: { perMillionMessages: 1.0, messageMeterBytes: 32 * 1024, perMillionConnectionMinutes: 0.25 },
  lambda: { perMillionRequests: 0.2, perGbSecond: 0.0000133334 },
  dynamoDb: { perMillionWriteUnits: 0.625, perMillionReadUnits: 0.125 },
  fargate: { perVcpuHour: 0.03238, perGbHour: 0.00356 },
  nlb: { perHour: 0.0225, perNlcuHour: 0.006, nlcuNewConnectionsPerSecond: 50, nlcuActiveConnections: 3_000, nlcuGbPerHour: 1 },
  iotCore: { perMillionMessages: 1.0, messageMeterBytes: 5 * 1024, perMillionConnectionMinutes: 0.08 },
};

/** The deployment the traffic is priced on: what the benchmark cannot measure locally. */
export interface Deployment {
  readonly lambdaMemoryMb: number;
  /** The steady rate that hourly costs (Fargate, NLB, connection-minutes) are spread over. */
  readonly deliveriesPerSecond: number;
  readonly listener: {
    readonly vcpuPerTask: number;
    readonly gbPerTask: number;
    /** Tasks kept running whatever the load (one per availability zone). */
    readonly minTasks: number;
    /** MQTT packets (in or out) one vCPU of listener frames and relays per second. */
    readonly packetsPerVcpuSecond: number;
  };
  /** Clients send PINGREQ this often when idle (for the connection-minute figures). */
  readonly keepAliveSeconds: number;
  /** One DynamoDB call from a Lambda function in the same region, for modeling handler duration. */
  readonly dynamoDbLatencyMs: number;
}

export const DEFAULT_DEPLOYMENT: Deployment = {
  lambdaMemoryMb: 1024,
  deliveriesPerSecond: 10_000,
  listener: { vcpuPerTask: 0.5, gbPerTask: 1, minTasks: 2, packetsPerVcpuSecond: 20_000 },
  keepAliveSeconds: 60,
  dynamoDbLatencyMs: 5,
};

/** What clients did, counted by the load generator over one measured interval. */
export interface Traffic {
  readonly publishes: number;
  readonly deliveries: number;
  /** Size of one message as the services meter it (its PUBLISH packet). */
  readonly messageBytes: number;
  /** Connections open while the traffic flowed. */
  readonly connections: number;
  /** MQTT packets both ways on the clients' sockets. */
  readonly packets: number;
  /** Bytes both ways on the clients' sockets: what an NLB processes. */
  readonly networkBytes: number;
}

/** What the broker did for that traffic, counted by the harness over the same interval. */
export interface BrokerWork {
  readonly invocations: number;
  /** Handler duration rounded up to 1 ms per invocation, summed. */
  readonly billedMs: number;
  readonly readUnits: number;
  readonly writeUnits: number;
}

/** Handler invocations as the local harness measured them. */
export interface MeasuredInvocations {
  readonly invocations: number;
  /** Wall time per invocation rounded up to 1 ms, summed. */
  readonly billedMs: number;
  readonly dynamoDbCalls: number;
  /** CPU time of the whole broker process (listener included) over the same interval, if known. */
  readonly brokerCpuMs?: number;
}

export interface LambdaDuration {
  /** What the cost model bills: the smaller of the two figures below, per invocation, times the invocations. */
  readonly billedMs: number;
  readonly measuredMsPerInvocation: number;
  readonly modeledMsPerInvocation?: number;
}

/**
 * Lambda duration for the measured invocations: the smaller of two upper bounds. The wall time
 * measured locally is inflated when many invocations queue in one process; the model makes every
 * DynamoDB call one after another at the deployment's latency and adds all the broker's CPU time.
 */
export function lambdaDuration(measured: MeasuredInvocations, deployment: Deployment): LambdaDuration {
  if (measured.invocations === 0) return { billedMs: 0, measuredMsPerInvocation: 0 };
  const measuredMsPerInvocation = measured.billedMs / measured.invocations;
  if (measured.brokerCpuMs === undefined) return { billedMs: measured.billedMs, measuredMsPerInvocation };
  const modeledMsPerInvocation = Math.max(
    1,
    Math.ceil((measured.dynamoDbCalls * deployment.dynamoDbLatencyMs + measured.brokerCpuMs) / measured.invocations),
  );
  return {
    billedMs: measured.invocations * Math.min(measuredMsPerInvocation, modeledMsPerInvocation),
    measuredMsPerInvocation,
    modeledMsPerInvocation,
  };
}

/** Dollars per million delivered messages (or connection-minutes), by line item, and their sum. */
export interface CostEstimate {
  readonly total: number;
  readonly items: Readonly<Record<string, number>>;
}

const MILLION = 1_000_000;
const GIB = 1024 ** 3;

function estimate(items: Record<string, number>): CostEstimate {
  return { total: Object.values(items).reduce((sum, value) => sum + value, 0), items };
}

/** A meter that bills per started block of `blockBytes`: a 6 KB message is two 5 KB messages. */
export function meteredUnits(bytes: number, blockBytes: number): number {
  return Math.max(1, Math.ceil(bytes / blockBytes));
}

/** Spreads an hourly cost over the deliveries of one hour at the deployment's steady rate. */
function perMillionDeliveries(dollarsPerHour: number, deployment: Deployment): number {
  return (dollarsPerHour / (deployment.deliveriesPerSecond * 3600)) * MILLION;
}

/** Per million of `units` (deliveries, or pings). */
function lambdaAndDynamoDb(work: BrokerWork, units: number, deployment: Deployment, prices: Prices): Record<string, number> {
  const gbSeconds = (work.billedMs / 1000) * (deployment.lambdaMemoryMb / 1024);
  return {
    lambdaRequests: (work.invocations / units) * prices.lambda.perMillionRequests,
    lambdaDuration: (gbSeconds / units) * prices.lambda.perGbSecond * MILLION,
    dynamoDbReads: (work.readUnits / units) * prices.dynamoDb.perMillionReadUnits,
    dynamoDbWrites: (work.writeUnits / units) * prices.dynamoDb.perMillionWriteUnits,
  };
}

/** Listener tasks needed for a packet rate and a number of connections held. */
export function listenerTasks(packetsPerSecond: number, deployment: Deployment): number {
  const { vcpuPerTask, minTasks, packetsPerVcpuSecond } = deployment.listener;
  return Math.max(minTasks, Math.ceil(packetsPerSecond / (packetsPerVcpuSecond * vcpuPerTask)));
}

/** NLB capacity units for a steady flow: the largest dimension counts. */
export function nlbCapacityUnits(connections: number, gbPerHour: number, newConnectionsPerSecond: number, prices: Prices): number {
  const { nlcuActiveConnections, nlcuGbPerHour, nlcuNewConnectionsPerSecond } = prices.nlb;
  return Math.max(connections / nlcuActiveConnections, gbPerHour / nlcuGbPerHour, newConnectionsPerSecond / nlcuNewConnectionsPerSecond);
}

/** Devices through the NLB and the Fargate listener: per million delivered messages. */
export function listenerDoorCost(traffic: Traffic, work: BrokerWork, deployment: Deployment, prices: Prices = AWS_LIST_PRICES): CostEstimate {
  const deliveries = traffic.deliveries;
  if (deliveries === 0) return estimate({});
  const rate = deployment.deliveriesPerSecond;
  const tasks = listenerTasks((traffic.packets / deliveries) * rate, deployment);
  const taskHour = deployment.listener.vcpuPerTask * prices.fargate.perVcpuHour + deployment.listener.gbPerTask * prices.fargate.perGbHour;
  const gbPerHour = ((traffic.networkBytes / deliveries) * rate * 3600) / GIB;
  const nlcus = nlbCapacityUnits(traffic.connections, gbPerHour, 0, prices);
  return estimate({
    ...lambdaAndDynamoDb(work, deliveries, deployment, prices),
    fargate: perMillionDeliveries(tasks * taskHour, deployment),
    nlb: perMillionDeliveries(prices.nlb.perHour + nlcus * prices.nlb.perNlcuHour, deployment),
  });
}

/** Messages through API Gateway's WebSocket API, each way, already counted in 32 KB blocks. */
export interface GatewayMessages {
  readonly messagesIn: number;
  readonly messagesOut: number;
}

/** Browsers through API Gateway's WebSocket door: per million delivered messages. */
export function apiGatewayDoorCost(
  traffic: Traffic,
  messages: GatewayMessages,
  work: BrokerWork,
  deployment: Deployment,
  prices: Prices = AWS_LIST_PRICES,
): CostEstimate {
  const deliveries = traffic.deliveries;
  if (deliveries === 0) return estimate({});
  const connectionMinutesPerDelivery = traffic.connections / (deployment.deliveriesPerSecond * 60);
  return estimate({
    ...lambdaAndDynamoDb(work, deliveries, deployment, prices),
    apiGatewayMessages: ((messages.messagesIn + messages.messagesOut) / deliveries) * prices.apiGatewayWebSocket.perMillionMessages,
    apiGatewayConnectionMinutes: connectionMinutesPerDelivery * prices.apiGatewayWebSocket.perMillionConnectionMinutes,
  });
}

/**
 * AWS IoT Core for the same traffic: a publish and each delivery are each a message, metered in
 * 5 KB blocks; connection-minutes for every connection held while the traffic flows.
 */
export function iotCoreCost(traffic: Traffic, deployment: Deployment, prices: Prices = AWS_LIST_PRICES): CostEstimate {
  const deliveries = traffic.deliveries;
  if (deliveries === 0) return estimate({});
  const blocks = meteredUnits(traffic.messageBytes, prices.iotCore.messageMeterBytes);
  const connectionMinutesPerDelivery = traffic.connections / (deployment.deliveriesPerSecond * 60);
  return estimate({
    messages: ((traffic.publishes + deliveries) / deliveries) * blocks * prices.iotCore.perMillionMessages,
    connectionMinutes: connectionMinutesPerDelivery * prices.iotCore.perMillionConnectionMinutes,
  });
}

/** What keeping one connection alive costs per keep-alive PINGREQ, as measured. */
export interface PingWork extends BrokerWork {
  readonly pings: number;
}

/** Dollars per million pings, as dollars per million connection-minutes at the deployment's keep-alive. */
function keepAlive(perMillionPings: Record<string, number>, deployment: Deployment): Record<string, number> {
  const pingsPerConnectionMinute = 60 / deployment.keepAliveSeconds;
  return Object.fromEntries(Object.entries(perMillionPings).map(([item, dollars]) => [`keepAlive ${item}`, dollars * pingsPerConnectionMinute]));
}

/**
 * Idle connections through the listener, per million connection-minutes, at the margin: the
 * keep-alive PINGREQs the handler answers, the listener memory each connection holds, and the
 * NLB capacity units it occupies.
 */
export function listenerIdleCost(bytesPerConnection: number, ping: PingWork, deployment: Deployment, prices: Prices = AWS_LIST_PRICES): CostEstimate {
  const perPing = ping.pings === 0 ? {} : lambdaAndDynamoDb(ping, ping.pings, deployment, prices);
  return estimate({
    ...keepAlive(perPing, deployment),
    fargateMemory: ((bytesPerConnection / GIB) * prices.fargate.perGbHour / 60) * MILLION,
    nlb: (prices.nlb.perNlcuHour / prices.nlb.nlcuActiveConnections / 60) * MILLION,
  });
}

/**
 * Idle connections through API Gateway, per million connection-minutes: its connection-minutes,
 * and each keep-alive PINGREQ and PINGRESP as a message, besides the handler's work.
 */
export function apiGatewayIdleCost(ping: PingWork & GatewayMessages, deployment: Deployment, prices: Prices = AWS_LIST_PRICES): CostEstimate {
  const perPing: Record<string, number> =
    ping.pings === 0
      ? {}
      : {
          ...lambdaAndDynamoDb(ping, ping.pings, deployment, prices),
          apiGatewayMessages: ((ping.messagesIn + ping.messagesOut) / ping.pings) * prices.apiGatewayWebSocket.perMillionMessages,
        };
  return estimate({ ...keepAlive(perPing, deployment), apiGatewayConnectionMinutes: prices.apiGatewayWebSocket.perMillionConnectionMinutes });
}

/** AWS IoT Core per million connection-minutes (keep-alive PINGREQs are not metered as messages). */
export function iotCoreIdleCost(prices: Prices = AWS_LIST_PRICES): CostEstimate {
  return estimate({ connectionMinutes: prices.iotCore.perMillionConnectionMinutes });
}
