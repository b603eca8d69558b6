/** The API Gateway door's inbound order. */
import type { ProtocolVersion } from '../../protocol/codec';

/** Holding a connection's inbox: who holds it, and the next sequence number to handle. */
export interface InboxLease {
  readonly token: string;
  readonly next: number;
}

/** How letting go of a lease went (ConnectionInbox.release). */
export type ReleaseOutcome = 'released' | 'pending' | 'lost' | { readonly takenOver: ProtocolVersion };

export interface ParkedMessage {
  readonly sequence: number;
  readonly body: string;
  readonly parkedAt: number;
}

/**
 * The API Gateway door's inbound order (see shared/broker/sequencer.ts): a lease per connection
 * that one invocation at a time holds, the next sequence number expected, and messages parked
 * until their turn. Implemented in shared/store/dynamo-inbox.ts.
 */
export interface ConnectionInbox {
  /**
   * Take the lease if no one holds it or its holder's time ran out; with `onlyIfNext`, only if
   * that is the next sequence number expected. Undefined if not taken.
   */
  acquire(connectionId: string, token: string, leaseMs: number, onlyIfNext?: number): Promise<InboxLease | undefined>;
  park(connectionId: string, sequence: number, body: string): Promise<void>;
  /** Parked messages from sequence `from` on, in order, at most `limit`. */
  parked(connectionId: string, from: number, limit: number): Promise<ParkedMessage[]>;
  /**
   * A message was parked while someone holds the lease: tell the holder, who learns it as it lets
   * go. False if no one holds the lease (any more): then take it instead.
   */
  markPending(connectionId: string): Promise<boolean>;
  /** Everything before `next` is handled; the lease is kept (and renewed). False if it was lost. */
  advance(connectionId: string, token: string, next: number, leaseMs: number): Promise<boolean>;
  /**
   * Everything before `next` is handled; the lease is let go. 'pending': a message was parked
   * while it was held (see markPending); 'lost': it was not held any more; `takenOver`: another
   * CONNECT took the session while this connection's CONNECT was handled (markTakenOver), so the
   * holder closes the connection, in its protocol version (the mark is cleared: told once).
   */
  release(connectionId: string, token: string, next: number): Promise<ReleaseOutcome>;
  /**
   * Another connection's CONNECT took this one's session. If this connection's first message
   * (its CONNECT) is being handled now, the holder is told as it lets go, and true is returned:
   * the holder closes the connection, after its CONNACK. False otherwise (that message was
   * handled, or no one holds the lease, or the connection has no inbox): the caller closes it.
   */
  markTakenOver(connectionId: string, protocolVersion: ProtocolVersion): Promise<boolean>;
  removeParked(connectionId: string, sequences: readonly number[]): Promise<void>;
  /** The connection is gone: its lease and parked messages go too. */
  forget(connectionId: string): Promise<void>;
}
