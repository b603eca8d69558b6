/** The handler's segments: an invocation's packets in arrival order, cut after every SUBSCRIBE and UNSUBSCRIBE. */
import { describe, expect, it } from 'vitest';
import { encodePacket, type Packet } from '../../shared/protocol/codec';
import { segmentsOf } from '../../shared/broker/packets';

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
