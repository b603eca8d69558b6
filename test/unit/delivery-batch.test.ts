import { describe, expect, it } from 'vitest';
import { MqttFramer } from '../../shared/protocol/framer';
import { decodeDeliveryBatch, encodeDeliveryBatch, encodeDeliveryBatches, parseGoneList } from '../../shared/gateway/delivery-batch';

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

  it('split into bodies of at most the limit, between whole packets, keeping each connection its bytes in order', () => {
    // PINGRESP (2 bytes) and small QoS 0 PUBLISHes: whole packets the split must not cut.
    const publish = (n: number) => Buffer.from([0x30, 0x05, 0x00, 0x01, 0x74, n, n]);
    const a = Buffer.concat([publish(1), publish(2), publish(3), Buffer.from([0xd0, 0x00]), publish(4)]);
    const b = Buffer.concat([publish(5), publish(6)]);
    const deliveries: Array<[string, Buffer]> = [['conn-a', a], ['conn-b', b], ['conn-c', Buffer.alloc(0)]];
    const maxBytes = 30;
    const bodies = encodeDeliveryBatches(deliveries, maxBytes);
    expect(bodies.length).toBeGreaterThan(1);
    for (const body of bodies) expect(body.length).toBeLessThanOrEqual(maxBytes);
    const pieces = bodies.flatMap(decodeDeliveryBatch);
    const joined = (id: string) => Buffer.concat(pieces.filter(([c]) => c === id).map(([, data]) => data));
    expect(joined('conn-a')).toEqual(a);
    expect(joined('conn-b')).toEqual(b);
    expect(pieces.filter(([c]) => c === 'conn-c')).toEqual([['conn-c', Buffer.alloc(0)]]);
    // each piece is whole packets: nothing left over when it is framed alone
    for (const [, data] of pieces) {
      const framer = new MqttFramer(1024);
      framer.push(data);
      expect(framer.pendingBytes).toBe(0);
    }
    expect(encodeDeliveryBatches(deliveries)).toEqual([encodeDeliveryBatch(deliveries)]);
  });
});
