/**
 * When a queue drains: decided here, from the facts the DeliveryStore reports. The store keeps
 * the conditions that must hold atomically (who holds the session, room, order, packet ids);
 * whether and where to drain is the broker's choice.
 */
import type { QueueingSession } from './ports';

/** Queued messages a drain moves into flight per round (one transaction each). */
export const QUEUE_CLAIM_BATCH = 25;

/**
 * Whoever queued last drains: after queueing a message for a client, the connection on which to
 * drain its queue now, if any. Only when the client is connected, nobody holds its deliveries
 * back (a CONNECT still resending drains after itself; a drain in progress sends what was queued
 * before it lets go) and it has room under its Receive Maximum (otherwise the acknowledgement
 * that frees a slot drains).
 */
export function drainAfterQueueing(session: QueueingSession | undefined, now: number): string | undefined {
  if (session?.connectionId === undefined) return undefined;
  const held = session.heldUntil !== undefined && session.heldUntil >= now;
  return !held && session.inFlight < session.receiveMaximum ? session.connectionId : undefined;
}
