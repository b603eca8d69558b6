/** QoS 1 and 2 deliveries to a client: in flight with packet ids, or queued. */
import type { OutgoingMessage, QueuedMessage } from './messages';

/** How one QoS 1/2 message to a connected client starts: in flight with this packet id, queued, or not at all (delivered before). */
export type DeliveryStart = { readonly packetId: number } | 'queue' | 'duplicate';

export interface EnqueueResult {
  /** False: the session is gone, nothing was kept. */
  readonly queued: boolean;
  /** The client is connected here with room under its Receive Maximum: drain its queue now. */
  readonly drainOn?: string;
}

/** What a drained queue gave: messages now in flight, each with its packet id. */
export interface ClaimedMessages {
  readonly messages: OutgoingMessage[];
  /** More are queued behind them (the client's Receive Maximum is reached). */
  readonly more: boolean;
}

/**
 * The hold a CONNECT takes on its session with its claim: deliveries wait (queued) until its client
 * has CONNACK, what was in flight and the queue [MQTT-3.2.0-1] [MQTT-4.4.0-1].
 */
export function connectHold(connectionId: string): string {
  return `connect:${connectionId}`;
}

/** QoS 1 and 2 messages on their way to a client: in flight (with packet ids) or queued. */
export interface DeliveryStore {

  /**
   * Start QoS 1/2 deliveries to a connected client, in order: each message gets a packet id and is
   * recorded in flight in the same write, while the client is still on `connectionId`, is not being
   * resumed, has room under its Receive Maximum and nothing queued ahead. One answer per message;
   * once one must queue, so do the rest.
   */
  startDeliveries(clientId: string, connectionId: string, receiveMaximum: number, messages: readonly QueuedMessage[]): Promise<DeliveryStart[]>;
  /** Queue a message for a client that cannot take it now. */
  enqueue(message: QueuedMessage): Promise<EnqueueResult>;
  /**
   * Move queued messages into flight, oldest first, while the client has room; each gets a packet
   * id and is recorded in flight with it. The claim holds the session's deliveries back (`hold`, a
   * token of the caller's, for a lease) until releaseHold, so nothing new overtakes them before
   * they are sent; nothing is claimed while another holds it.
   */
  claimQueued(clientId: string, connectionId: string, receiveMaximum: number, hold: string): Promise<ClaimedMessages>;
  /**
   * What the holder (a CONNECT: connectHold; a drain) held back is sent: deliveries may start
   * again. Only with nothing queued, or no room for it (`queued`: drain again first); `not-held`:
   * the caller does not hold it (never did, its lease lapsed, or another connection has the session).
   */
  releaseHold(clientId: string, connectionId: string, hold: string, receiveMaximum: number): Promise<'released' | 'queued' | 'not-held'>;
  /** Messages in flight to a client, oldest first: resent when it reconnects. */
  listOutgoing(clientId: string): Promise<OutgoingMessage[]>;
  /** PUBREC received: the message is now awaiting PUBCOMP. False if it was not in flight. */
  releaseOutgoing(clientId: string, packetId: number): Promise<boolean>;
  /** PUBACK or PUBCOMP received. `queued`: messages wait for the slot this frees. */
  completeOutgoing(clientId: string, packetId: number, receiveMaximum: number): Promise<{ found: boolean; queued: boolean }>;
  /** A resumed session's count of messages in flight, as found on reconnect (its Receive Maximum may differ now). */
  setInFlight(clientId: string, count: number): Promise<void>;
}
