import { describe } from 'vitest';
import { RawConnection } from '../support/clients';
import { useHarness } from '../support/harness';
import { describeBrokerSuite } from './broker-suite';

const harness = useHarness();

describe("MQTT over the listener's WebSocket", () => {
  describeBrokerSuite({
    name: 'WebSocket',
    url: () => harness().wsUrl,
    raw: (version) => RawConnection.websocket(harness().wsUrl, version),
  });
});
