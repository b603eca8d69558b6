/** The benchmark's count of write units for transactions, which DynamoDB Local under-reports. */
import { describe, expect, it } from 'vitest';
import { CapacityMeter } from '../../shared/store/capacity-meter';

describe('CapacityMeter.recordTransaction', () => {
  it('counts two write units per item per KB, as AWS bills a write transaction', () => {
    const meter = new CapacityMeter();
    meter.recordTransaction([{ Put: { Item: { clientId: 'c', sk: 'out#00001', payload: new Uint8Array(100) } } }, {}]);
    expect(meter.snapshot()).toEqual({ calls: 1, readUnits: 0, writeUnits: 4 });
    // 1.5 KB of payload: two KB, four units
    meter.recordTransaction([{ Put: { Item: { clientId: 'c', sk: 'q#1', payload: new Uint8Array(1536) } } }]);
    expect(meter.snapshot()).toEqual({ calls: 2, readUnits: 0, writeUnits: 8 });
  });
});
