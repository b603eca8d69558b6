/**
 * What the listener tells the packet handler when connections close: every connection that sent
 * a packet has its close reported, once; a connection that never sent one (a load balancer's TCP
 * health check, a port scan) costs no invocation, as the broker holds nothing for it; closes of
 * many connections share invocations, as their packets do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonLogger } from '../../shared/util/logger';
import { perConnection, type OneConnectionEvent } from '../support/listener-events';
import { MqttListener } from '../../shared/listener/listener';
import { eventually, RawConnection, settle } from '../support/clients';

const events: OneConnectionEvent[] = [];
/** How many connections' closes each invocation carried. */
const closesPerInvocation: number[] = [];
const listener = new MqttListener({
  host: '127.0.0.1',
  mqttPort: 0,
  wsPort: 0,
  deliveryPort: 0,
  advertisedHost: '127.0.0.1',
  deliverySecret: 'a-test-delivery-secret-of-32-characters',
  // The listener's port to the packet handler: here it records what would go to Lambda.
  sink: {
    invoke: async (event) => {
      const each = perConnection(event);
      events.push(...each);
      const closes = each.filter((e) => e.type === 'closed').length;
      if (closes > 0) closesPerInvocation.push(closes);
    },
  },
  log: createJsonLogger('silent'),
});
let mqttPort = 0;

beforeAll(async () => {
  ({ mqttPort } = await listener.start());
});

afterAll(async () => {
  await listener.stop();
});

describe('close reports', () => {
  it('a connection that sent nothing closes without invoking the handler', async () => {
    const raw = await RawConnection.tcp(mqttPort);
    raw.close();
    await settle(300);
    expect(events).toEqual([]);
  });

  it('a connection that sent a packet has its close reported once, after its packets', async () => {
    const raw = await RawConnection.tcp(mqttPort);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'c', clean: true, keepalive: 0 });
    await eventually(() => events.length === 1, 'the CONNECT batch');
    raw.close();
    await eventually(() => events.length === 2, 'the close report');
    await settle(200);
    expect(events.map((e) => e.type)).toEqual(['packets', 'closed']);
    expect(new Set(events.map((e) => e.connectionId)).size).toBe(1);
  });

  it('connections closing together have their closes reported in a few invocations, not one each', async () => {
    events.length = 0;
    closesPerInvocation.length = 0;
    const raws = await Promise.all(Array.from({ length: 40 }, () => RawConnection.tcp(mqttPort)));
    raws.forEach((raw, i) => raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `storm-${i}`, clean: true, keepalive: 0 }));
    await eventually(() => events.length === 40, 'the CONNECT batches');
    for (const raw of raws) raw.close();
    await eventually(() => events.length === 80, 'the close reports');
    await settle(200);
    const closed = events.filter((e) => e.type === 'closed').map((e) => e.connectionId);
    expect(new Set(closed).size).toBe(40);
    expect(closed).toHaveLength(40);
    // Within the batch window of 50 ms: far fewer invocations than connections.
    expect(closesPerInvocation.length).toBeLessThan(10);
  });
});
