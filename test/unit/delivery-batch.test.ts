import { describe, expect, it } from 'vitest';
import { decodeDeliveryBatch, encodeDeliveryBatch, parseGoneList } from '../../shared/gateway/delivery-batch';

describe('listener delivery batches', () => {
  it('carry each connection its own bytes, in order, ids of any length and empty data included', () => {
    const deliveries: Array<[string, Buffer]> = [
      ['l.aHR0cDovLzEwLjAuMS43OjgwOTA.abc', Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61])],
      ['é-unicode-id', Buffer.alloc(0)],
      ['x'.repeat(300), Buffer.alloc(70_000, 7)],
    ];
    const body = encodeDeliveryBatch(deliveries);
    expect(body.readUInt16BE(0)).toBe(Buffer.byteLength(deliveries[0]![0]));
    expect(decodeDeliveryBatch(body)).toEqual(deliveries);
  });

  it('refuse a body that is cut short anywhere', () => {
    const body = encodeDeliveryBatch([['conn', Buffer.from('data')]]);
    for (let length = 1; length < body.length; length++) {
      expect(() => decodeDeliveryBatch(body.subarray(0, length))).toThrow(/cut short/);
    }
  });

  it('read the gone list of the answer', () => {
    expect(parseGoneList('{"gone":["a","b"]}')).toEqual(new Set(['a', 'b']));
    expect(parseGoneList('{}')).toEqual(new Set());
  });
});
