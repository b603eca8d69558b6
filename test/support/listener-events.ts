import type { ListenerEvent } from '../../shared/listener/events';

/**
 * A listener event as one event per connection: a batch of many connections' packets and closes
 * becomes one 'packets' or 'closed' event for each, in the batch's order; the task's heartbeat, about no connection,
 * is left out; other events stay as they are. For tests that record what one connection's handler
 * would have been given.
 */
/** Any listener event about one connection. */
export type OneConnectionEvent = Exclude<ListenerEvent, { readonly type: 'batch' | 'heartbeat' }>;

export function perConnection(event: ListenerEvent): OneConnectionEvent[] {
  if (event.type === 'heartbeat') return [];
  if (event.type !== 'batch') return [event];
  return event.connections.map(({ connectionId, packets, protocolVersion, closed }): OneConnectionEvent =>
    closed !== undefined
      ? { type: 'closed', connectionId, reason: closed }
      : { type: 'packets', connectionId, packets, ...(protocolVersion ? { protocolVersion } : {}) },
  );
}
