/**
 * The harness's store-failure injection (HarnessOptions.faults.storeFailure), which the chaos
 * suite turns on and off as it goes: while every store call fails, a CONNECT is not accepted (the
 * handler dies, the listener closes the connection); once it is off, the broker works again.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHarness, type Harness } from '../../local/harness';
import { collect, connectClient, endAll, eventually } from '../support/clients';

const faults = { handlerFailure: 0, storeFailure: 0 };
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({ dynamoDbEndpoint: inject('dynamoDbEndpoint'), mqttPort: 0, wsPort: 0, apigwPort: 0, logLevel: 'silent', faults });
});

afterAll(async () => {
  await harness?.stop();
});

describe('injected store failures', () => {
  it('fail the handler while switched on, and nothing once switched off', async () => {
    const id = `${process.pid}-${Date.now()}`;
    faults.storeFailure = 1;
    await expect(connectClient(harness.mqttUrl, { protocolVersion: 5, clientId: `refused-${id}` })).rejects.toThrow();
    expect(harness.faults.storeFailures).toBeGreaterThan(0);

    faults.storeFailure = 0;
    const failures = harness.faults.storeFailures;
    const client = await connectClient(harness.mqttUrl, { protocolVersion: 5, clientId: `accepted-${id}` });
    const received = collect(client);
    await client.subscribeAsync(`store-faults/${id}`, { qos: 1 });
    await client.publishAsync(`store-faults/${id}`, 'through', { qos: 1 });
    await eventually(() => received.length > 0, 'the message');
    expect(received.map((m) => m.payload)).toEqual(['through']);
    expect(harness.faults.storeFailures).toBe(failures);
    await endAll(client);
  });
});
