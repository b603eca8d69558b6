import { describe, expect, it } from 'vitest';
import {
  apiGatewayDoorCost,
  apiGatewayIdleCost,
  AWS_LIST_PRICES,
  DEFAULT_DEPLOYMENT,
  iotCoreCost,
  iotCoreIdleCost,
  lambdaDuration,
  listenerDoorCost,
  listenerIdleCost,
  listenerTasks,
  meteredUnits,
  nlbCapacityUnits,
  type Deployment,
  type Prices,
  type Traffic,
} from '../../bench/cost-model';

/** Round prices, so every expected figure below can be checked by hand. */
const roundPrices: Prices = {
  apiGatewayWebSocket: { perMillionMessages: 1, messageMeterBytes: 32 * 1024, perMillionConnectionMinutes: 0.25 },
  lambda: { perMillionRequests: 0.2, perGbSecond: 0.00001 },
  dynamoDb: { perMillionWriteUnits: 1, perMillionReadUnits: 0.1 },
  fargate: { perVcpuHour: 0.04, perGbHour: 0.01 },
  nlb: { perHour: 0.02, perNlcuHour: 0.01, nlcuNewConnectionsPerSecond: 50, nlcuActiveConnections: 1_000, nlcuGbPerHour: 1 },
  iotCore: { perMillionMessages: 1, messageMeterBytes: 5 * 1024, perMillionConnectionMinutes: 0.08 },
};

/** 3,600 deliveries per second: 12.96 million an hour, so $1 an hour is $0.0771604938 per million. */
const deployment: Deployment = {
  lambdaMemoryMb: 2048,
  deliveriesPerSecond: 3_600,
  listener: { vcpuPerTask: 1, gbPerTask: 2, minTasks: 2, packetsPerVcpuSecond: 1_000 },
  keepAliveSeconds: 30,
  dynamoDbLatencyMs: 4,
};
const perMillionAtOneDollarAnHour = 1_000_000 / (3_600 * 3_600);

const oneToOne: Traffic = { publishes: 1_000_000, deliveries: 1_000_000, messageBytes: 100, connections: 2, packets: 2_000_000, networkBytes: 0 };

describe('meteredUnits', () => {
  it('bills every started block, and at least one', () => {
    expect(meteredUnits(0, 5120)).toBe(1);
    expect(meteredUnits(1, 5120)).toBe(1);
    expect(meteredUnits(5120, 5120)).toBe(1);
    expect(meteredUnits(5121, 5120)).toBe(2);
    expect(meteredUnits(32 * 1024 * 3, 32 * 1024)).toBe(3);
  });
});

describe('listenerDoorCost', () => {
  it('prices requests, GB-seconds and capacity units per million deliveries', () => {
    // 1 invocation and 10 billed ms at 2 GB per delivery: 0.02 GB-s; 2 read and 0.5 write units
    const work = { invocations: 1_000_000, billedMs: 10_000_000, readUnits: 2_000_000, writeUnits: 500_000 };
    const cost = listenerDoorCost(oneToOne, work, deployment, roundPrices);
    expect(cost.items.lambdaRequests).toBeCloseTo(0.2, 10);
    expect(cost.items.lambdaDuration).toBeCloseTo(0.2, 10); // 20,000 GB-s x $0.00001
    expect(cost.items.dynamoDbReads).toBeCloseTo(0.2, 10);
    expect(cost.items.dynamoDbWrites).toBeCloseTo(0.5, 10);
  });

  it('counts a batch of many deliveries as one request', () => {
    const work = { invocations: 10_000, billedMs: 0, readUnits: 0, writeUnits: 0 };
    expect(listenerDoorCost(oneToOne, work, deployment, roundPrices).items.lambdaRequests).toBeCloseTo(0.002, 10);
  });

  it('spreads listener tasks and the NLB hour over the deliveries of an hour at the steady rate', () => {
    const none = { invocations: 0, billedMs: 0, readUnits: 0, writeUnits: 0 };
    // 2 packets per delivery at 3,600/s = 7,200 packets/s: 8 one-vCPU tasks at 1,000 packets/s each
    const cost = listenerDoorCost(oneToOne, none, deployment, roundPrices);
    expect(cost.items.fargate).toBeCloseTo(8 * (0.04 + 2 * 0.01) * perMillionAtOneDollarAnHour, 10);
    // 2 connections of 1,000 per NLCU: 0.002 NLCU
    expect(cost.items.nlb).toBeCloseTo((0.02 + 0.002 * 0.01) * perMillionAtOneDollarAnHour, 10);
    expect(cost.total).toBeCloseTo(cost.items.fargate! + cost.items.nlb!, 12);
  });

  it('bills NLB processed bytes by the gigabyte-hour', () => {
    const none = { invocations: 0, billedMs: 0, readUnits: 0, writeUnits: 0 };
    // 1 GiB per hour is 3,600 x 3,600 deliveries' worth: bytes per delivery = 2^30 / 12,960,000
    const traffic = { ...oneToOne, networkBytes: (1024 ** 3 / (3_600 * 3_600)) * 1_000_000 * 3 };
    const cost = listenerDoorCost(traffic, none, deployment, roundPrices);
    expect(cost.items.nlb).toBeCloseTo((0.02 + 3 * 0.01) * perMillionAtOneDollarAnHour, 10);
  });

  it('is empty when nothing was delivered', () => {
    const work = { invocations: 5, billedMs: 5, readUnits: 5, writeUnits: 5 };
    expect(listenerDoorCost({ ...oneToOne, deliveries: 0 }, work, deployment, roundPrices)).toEqual({ total: 0, items: {} });
  });
});

describe('listenerTasks and nlbCapacityUnits', () => {
  it('keeps the minimum and scales with packets', () => {
    expect(listenerTasks(0, deployment)).toBe(2);
    expect(listenerTasks(2_001, deployment)).toBe(3);
    expect(listenerTasks(100_000, DEFAULT_DEPLOYMENT)).toBe(10); // 0.5 vCPU x 20,000 packets/s each
  });

  it('takes the largest dimension', () => {
    expect(nlbCapacityUnits(6_000, 1, 0, AWS_LIST_PRICES)).toBe(2); // 3,000 TLS connections per NLCU
    expect(nlbCapacityUnits(0, 4.5, 0, AWS_LIST_PRICES)).toBe(4.5);
    expect(nlbCapacityUnits(0, 0, 100, AWS_LIST_PRICES)).toBe(2); // 50 new TLS connections/s per NLCU
  });
});

describe('apiGatewayDoorCost', () => {
  it('bills every message each way, the connection-minutes, and the handler work', () => {
    // per delivery: the PUBLISH in, the delivery out, the subscriber's PUBACK in; one invocation each way in
    const work = { invocations: 2_000_000, billedMs: 0, readUnits: 1_000_000, writeUnits: 0 };
    const cost = apiGatewayDoorCost(oneToOne, { messagesIn: 2_000_000, messagesOut: 1_000_000 }, work, deployment, roundPrices);
    expect(cost.items.apiGatewayMessages).toBeCloseTo(3, 10);
    expect(cost.items.apiGatewayConnectionMinutes).toBeCloseTo((2 / 216_000) * 0.25, 12);
    expect(cost.items.lambdaRequests).toBeCloseTo(0.4, 10);
    expect(cost.items.dynamoDbReads).toBeCloseTo(0.1, 10);
    expect(cost.items.fargate).toBeUndefined();
  });

  it('bills idle connections by the minute, and each PINGREQ and PINGRESP as a message', () => {
    const ping = { pings: 100, invocations: 100, billedMs: 100, readUnits: 0, writeUnits: 0, messagesIn: 100, messagesOut: 100 };
    const cost = apiGatewayIdleCost(ping, deployment, roundPrices);
    expect(cost.items.apiGatewayConnectionMinutes).toBe(0.25);
    expect(cost.items['keepAlive apiGatewayMessages']).toBeCloseTo(4, 10); // 2 messages a ping, 2 pings a minute
    expect(cost.items['keepAlive lambdaRequests']).toBeCloseTo(0.4, 10);
  });
});

describe('iotCoreCost', () => {
  it('counts the publish and each delivery as a message, and the connection-minutes', () => {
    const cost = iotCoreCost(oneToOne, deployment, roundPrices);
    expect(cost.items.messages).toBeCloseTo(2, 10);
    // 2 connections for the 216,000 deliveries of a minute at 3,600/s
    expect(cost.items.connectionMinutes).toBeCloseTo((2 / 216_000) * 0.08, 12);
  });

  it('makes a fan-out cheaper per delivery, and a 6 KB message cost two', () => {
    const fanOut = { ...oneToOne, publishes: 1_000, deliveries: 1_000_000 };
    expect(iotCoreCost(fanOut, deployment, roundPrices).items.messages).toBeCloseTo(1.001, 10);
    expect(iotCoreCost({ ...oneToOne, messageBytes: 6 * 1024 }, deployment, roundPrices).items.messages).toBeCloseTo(4, 10);
  });

  it('is $2.00 per million for small 1:1 messages at list prices', () => {
    expect(iotCoreCost(oneToOne, DEFAULT_DEPLOYMENT).total).toBeCloseTo(2, 5);
  });
});

describe('idle connections, per million connection-minutes', () => {
  it('prices keep-alive pings, listener memory and NLB capacity', () => {
    // each ping: 1 invocation, 2 billed ms at 2 GB, 1 read unit; keep-alive 30 s = 2 pings a minute
    const ping = { pings: 1_000, invocations: 1_000, billedMs: 2_000, readUnits: 1_000, writeUnits: 0 };
    const cost = listenerIdleCost(1024 ** 3 / 1_000, ping, deployment, roundPrices);
    expect(cost.items['keepAlive lambdaRequests']).toBeCloseTo(0.4, 10);
    expect(cost.items['keepAlive lambdaDuration']).toBeCloseTo(2 * 0.004 * 0.00001 * 1_000_000, 10);
    expect(cost.items['keepAlive dynamoDbReads']).toBeCloseTo(0.2, 10);
    expect(cost.items.fargateMemory).toBeCloseTo(((0.001 * 0.01) / 60) * 1_000_000, 10);
    expect(cost.items.nlb).toBeCloseTo((0.01 / 1_000 / 60) * 1_000_000, 10);
  });

  it('is IoT Core list price for IoT Core', () => {
    expect(iotCoreIdleCost().total).toBe(0.08);
  });
});

describe('lambdaDuration', () => {
  it('bills the model when queueing inflated the measured wall time', () => {
    // measured 50 ms each; model: 3 calls x 4 ms + 2 ms of CPU = 14 ms each
    const duration = lambdaDuration({ invocations: 10, billedMs: 500, dynamoDbCalls: 30, brokerCpuMs: 20 }, deployment);
    expect(duration).toEqual({ billedMs: 140, measuredMsPerInvocation: 50, modeledMsPerInvocation: 14 });
  });

  it('bills the measured time when calls ran in parallel, faster than the model', () => {
    const duration = lambdaDuration({ invocations: 2, billedMs: 20, dynamoDbCalls: 100, brokerCpuMs: 10 }, deployment);
    expect(duration.billedMs).toBe(20);
    expect(duration.modeledMsPerInvocation).toBe(205);
  });

  it('rounds the model up to whole milliseconds, at least one', () => {
    expect(lambdaDuration({ invocations: 4, billedMs: 400, dynamoDbCalls: 1, brokerCpuMs: 0 }, deployment).modeledMsPerInvocation).toBe(1);
    expect(lambdaDuration({ invocations: 3, billedMs: 300, dynamoDbCalls: 3, brokerCpuMs: 1 }, deployment).billedMs).toBe(15); // 13/3 -> 5 ms
  });

  it('has only the measurement without the broker CPU time, and nothing without invocations', () => {
    expect(lambdaDuration({ invocations: 2, billedMs: 30, dynamoDbCalls: 4 }, deployment)).toEqual({ billedMs: 30, measuredMsPerInvocation: 15 });
    expect(lambdaDuration({ invocations: 0, billedMs: 0, dynamoDbCalls: 0, brokerCpuMs: 5 }, deployment).billedMs).toBe(0);
  });
});
