/** The handler's segments: an invocation's packets in arrival order, cut after every SUBSCRIBE and UNSUBSCRIBE. */
import { describe, expect, it } from 'vitest';
import { encodePacket, type Packet } from '../../shared/protocol/codec';
import { publishTopicOf, segmentsOf } from '../../shared/broker/packets';

const bytes = (packet: Packet): Buffer => encodePacket(packet, 4);
const pub = bytes({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
const sub = bytes({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 't', qos: 0 }] });
const unsub = bytes({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['t'] });

describe('segmentsOf', () => {
  it('follows the arrival numbers across connections and cuts after each SUBSCRIBE and UNSUBSCRIBE', () => {
    const segments = segmentsOf([
      { connectionId: 'a', frames: [pub, sub, pub], sequences: [1, 3, 6] },
      { connectionId: 'b', frames: [pub, pub, unsub, pub], sequences: [2, 4, 5, 7] },
    ]);
    expect(segments).toEqual([
      [
        { connection: 0, frames: [0, 1] },
        { connection: 1, frames: [0] },
      ],
      [{ connection: 1, frames: [1, 2] }],
      [
        { connection: 0, frames: [2] },
        { connection: 1, frames: [3] },
      ],
    ]);
  });

  it('without a SUBSCRIBE, one segment: every connection runs at once, each its packets in order', () => {
    expect(segmentsOf([
      { connectionId: 'a', frames: [pub, pub], sequences: [1, 4] },
      { connectionId: 'b', frames: [pub], sequences: [2] },
    ])).toEqual([[{ connection: 0, frames: [0, 1] }, { connection: 1, frames: [0] }]]);
  });

  it('a batch without numbers (one connection, the API Gateway door) keeps its order', () => {
    expect(segmentsOf([{ connectionId: 'a', frames: [pub, sub, pub] }])).toEqual([[{ connection: 0, frames: [0, 1] }], [{ connection: 0, frames: [2] }]]);
  });
});

describe('publishTopicOf', () => {
  const publish = (topic: string, version: 4 | 5 = 4, payloadBytes = 3) =>
    encodePacket({ cmd: 'publish', topic, payload: Buffer.alloc(payloadBytes, 1), qos: 1, messageId: 7, retain: false, dup: false }, version);

  it('reads the topic of a 3.1.1 and a 5.0 PUBLISH, also behind a multi-byte remaining length', () => {
    expect(publishTopicOf(publish('fleet/1/telemetry'))).toBe('fleet/1/telemetry');
    expect(publishTopicOf(publish('fleet/ü/t', 5))).toBe('fleet/ü/t');
    expect(publishTopicOf(publish('big', 4, 200_000))).toBe('big');
  });

  it('has nothing for other packets, a truncated frame, an empty (aliased) topic or one with wildcards', () => {
    expect(publishTopicOf(sub)).toBeUndefined();
    expect(publishTopicOf(publish('fleet/1/telemetry').subarray(0, 6))).toBeUndefined();
    expect(publishTopicOf(Buffer.from([0x30, 0x02, 0x00, 0x00]))).toBeUndefined();
    expect(publishTopicOf(Buffer.from([0x30, 0x03, 0x00, 0x01, 0x2b]))).toBeUndefined();
  });
});
