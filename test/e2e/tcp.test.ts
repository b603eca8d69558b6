import { describe } from 'vitest';
import { RawConnection } from '../support/clients';
import { useHarness } from '../support/harness';
import { describeBrokerSuite } from './broker-suite';

const harness = useHarness();

describe('MQTT over TCP', () => {
  describeBrokerSuite({
    name: 'TCP',
    url: () => harness().mqttUrl,
    raw: (version) => RawConnection.tcp(harness().mqttPort, version),
  });
});
