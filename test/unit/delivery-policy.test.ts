/** When the broker drains a queue after queueing a message: "whoever queued last drains", from the facts enqueue reports. */
import { describe, expect, it } from 'vitest';
import { drainAfterQueueing } from '../../shared/broker/delivery-policy';

const now = 1_000_000;

describe('drainAfterQueueing', () => {
  it('drains on the connection holding the session when nobody holds its deliveries and it has room', () => {
    expect(drainAfterQueueing({ connectionId: 'c1', inFlight: 0, receiveMaximum: 65535 }, now)).toBe('c1');
    expect(drainAfterQueueing({ connectionId: 'c1', inFlight: 1, receiveMaximum: 2 }, now)).toBe('c1');
  });

  it('does not drain for a client that is away, or a session that is gone', () => {
    expect(drainAfterQueueing({ inFlight: 0, receiveMaximum: 65535 }, now)).toBeUndefined();
    expect(drainAfterQueueing(undefined, now)).toBeUndefined();
  });

  it('[MQTT-3.2.0-1] [MQTT-4.4.0-1] leaves the queue to the holder (a CONNECT resending, a drain sending) while its hold stands', () => {
    expect(drainAfterQueueing({ connectionId: 'c1', inFlight: 0, receiveMaximum: 65535, heldUntil: now }, now)).toBeUndefined();
    expect(drainAfterQueueing({ connectionId: 'c1', inFlight: 0, receiveMaximum: 65535, heldUntil: now + 1 }, now)).toBeUndefined();
    // A hold whose lease lapsed: its holder died, others go on.
    expect(drainAfterQueueing({ connectionId: 'c1', inFlight: 0, receiveMaximum: 65535, heldUntil: now - 1 }, now)).toBe('c1');
  });

  it('[MQTT-4.9.0-2] leaves the queue to the acknowledgement that frees a slot when the Receive Maximum is reached', () => {
    expect(drainAfterQueueing({ connectionId: 'c1', inFlight: 2, receiveMaximum: 2 }, now)).toBeUndefined();
  });
});
