/**
 * The listener answers a connected client's PINGREQ itself: a keep-alive costs an idle device
 * no handler invocation and no DynamoDB call (the benchmark's idle-connections scenario prices it).
 */
import { describe, expect, it } from 'vitest';
import { eventually, RawConnection } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness();

describe('keep-alive on the listener', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`[MQTT-3.12.4-1] (${protocolVersion === 5 ? '5.0' : '3.1.1'}) PINGREQ gets PINGRESP from the listener, without invoking the handler`, async () => {
      const raw = await RawConnection.tcp(harness().mqttPort, protocolVersion);
      try {
        raw.send({ cmd: 'connect', clientId: `ping-${protocolVersion}-${process.pid}`, protocolVersion, clean: true, keepalive: 30 });
        await raw.next('connack');
        const before = harness().meters.invocations.snapshot();
        for (let i = 0; i < 3; i++) {
          raw.send({ cmd: 'pingreq' });
          await raw.next('pingresp');
        }
        const after = harness().meters.invocations.snapshot();
        expect(after.byRoute.packets ?? 0).toBe(before.byRoute.packets ?? 0);
      } finally {
        // Its close goes to the handler in a later batch: wait for it, so that it does not land in
        // the next test's count.
        const atClose = harness().meters.invocations.snapshot().byRoute.packets ?? 0;
        raw.close();
        await eventually(() => (harness().meters.invocations.snapshot().byRoute.packets ?? 0) > atClose, 'the close report');
      }
    });
  }

  it('[MQTT-3.1.0-1] a PINGREQ before CONNECT still goes to the handler, which closes the connection', async () => {
    const raw = await RawConnection.tcp(harness().mqttPort, 4);
    raw.send({ cmd: 'pingreq' });
    await raw.waitClosed();
  });
});
