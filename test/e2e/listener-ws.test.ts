import { describe } from 'vitest';
import { useHarness } from '../support/harness';
import { describeBrokerSuite } from './broker-suite';
import { limitsHarnessOptions, listenerDoors, mainHarnessOptions } from './conformance/support';

const harness = useHarness(mainHarnessOptions);
const limitsHarness = useHarness(limitsHarnessOptions);

describe("MQTT over the listener's WebSocket", () => {
  describeBrokerSuite(listenerDoors('WebSocket', harness, limitsHarness));
});
