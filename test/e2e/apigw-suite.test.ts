import { describe } from 'vitest';
import { connectThroughApiGateway, RawConnection } from '../support/clients';
import { useHarness } from '../support/harness';
import { describeBrokerSuite } from './broker-suite';

// The shared suite, through the API Gateway emulator with its $default jitter on: stock MQTT.js
// with the browser adapter, and raw clients that number their messages as the adapter does.
const harness = useHarness({ apigw: { jitterMs: 5 } });

describe('MQTT over the API Gateway door', () => {
  describeBrokerSuite({
    name: 'API Gateway',
    url: () => harness().apigwUrl,
    connect: (options) => connectThroughApiGateway(harness().apigwUrl, options),
    raw: (version) => RawConnection.apiGateway(harness().apigwUrl, version),
    enforcesKeepAlive: false,
  });
});
