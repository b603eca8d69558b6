/** SegmentDeliveries: the runs of a segment's connections recorded together, each connection told its own outcome. */
import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../shared/broker/actions';
import { SegmentDeliveries } from '../../shared/broker/segment-deliveries';

const delivery = (clientId: string, topic: string): Delivery => ({
  recipient: { clientId, protocolVersion: 4 },
  message: { clientId, topic, payload: Buffer.from(topic), qos: 1, retain: false },
} as unknown as Delivery);

/** A dispatcher that records what it was given and fails the groups that deliver to `failing`. */
function recordingDispatcher(failing = new Set<string>()) {
  const calls: string[][][] = [];
  return {
    calls,
    deliverGroups: async (groups: ReadonlyArray<readonly Delivery[]>): Promise<unknown[]> => {
      calls.push(groups.map((group) => group.map((d) => d.message.topic)));
      return groups.map((group) => {
        const hit = group.find((d) => failing.has(d.recipient.clientId));
        return hit ? new Error(`${hit.recipient.clientId} failed`) : undefined;
      });
    },
  };
}

describe('SegmentDeliveries', () => {
  it('records once when every connection still at work is waiting: the others\' runs with it', async () => {
    const dispatcher = recordingDispatcher();
    const segment = new SegmentDeliveries(dispatcher, 3);
    const a = segment.deliver([delivery('backend', 'a/1'), delivery('backend', 'a/2')]);
    const b = segment.deliver([delivery('backend', 'b/1')]);
    expect(dispatcher.calls).toHaveLength(0);
    // The third connection had nothing to deliver: once it leaves, nobody is left to wait for.
    segment.leave();
    await Promise.all([a, b]);
    expect(dispatcher.calls).toEqual([[['a/1', 'a/2'], ['b/1']]]);
  });

  it('a failed recipient fails only the connections that delivered to it', async () => {
    const dispatcher = recordingDispatcher(new Set(['broken']));
    const segment = new SegmentDeliveries(dispatcher, 2);
    const ok = segment.deliver([delivery('backend', 'a/1')]);
    const failed = segment.deliver([delivery('backend', 'b/1'), delivery('broken', 'b/1')]);
    await expect(ok).resolves.toBeUndefined();
    await expect(failed).rejects.toThrow('broken failed');
  });

  it('does not wait long for a connection still busy with something else', async () => {
    const dispatcher = recordingDispatcher();
    const segment = new SegmentDeliveries(dispatcher, 2);
    const started = Date.now();
    await segment.deliver([delivery('backend', 'a/1')]);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(dispatcher.calls).toEqual([[['a/1']]]);
    // The busy one delivers later, alone.
    segment.leave();
    await segment.deliver([delivery('backend', 'b/1')]);
    expect(dispatcher.calls).toEqual([[['a/1']], [['b/1']]]);
  });

  it('nothing to deliver: answered at once, nothing recorded', async () => {
    const dispatcher = recordingDispatcher();
    await new SegmentDeliveries(dispatcher, 2).deliver([]);
    expect(dispatcher.calls).toHaveLength(0);
  });
});
