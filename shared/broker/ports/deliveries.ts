/** QoS 1 and 2 deliveries to a client: in flight with packet ids, or queued. */
import type { OutgoingMessage, QueuedMessage } from './messages';

/** How one QoS 1/2 message to a connected client starts: in flight with this packet id, queued, or not at all (delivered before). */
export type DeliveryStart = { readonly packetId: number } | 'queue' | 'duplicate';

/**
 * A session's delivery state as read right after a message joined its queue: the facts the
 * broker decides by whether to drain the queue now (shared/broker/delivery-policy.ts).
 */
export interface QueueingSession {
  /** The connection that holds the session; none while the client is away. */
  readonly connectionId?: string;
  /** QoS 1/2 messages in flight to the client (counted only under a Receive Maximum below 65535). */
  readonly inFlight: number;
  /** The Receive Maximum the client connected with (65535 when it set none). */
  readonly receiveMaximum: number;
  /** While deliveries are held back (a CONNECT resending, a drain sending): until when, epoch ms. */
  readonly heldUntil?: number;
}

/** Queued (with the session's state just after), or not: the session is gone, or the message was delivered before. */
/** How much one session's queue holds: messages, and bytes of topic and payload (absent: no byte bound). */
export interface QueueBound {
  readonly messages: number;
  readonly bytes?: number;
}

export type EnqueueResult = { readonly queued: false; readonly full?: true } | { readonly queued: true; readonly session?: QueueingSession };

/**
 * A hold on a session's deliveries: while it stands, no new delivery starts and no one else
 * claims the queue, so nothing overtakes what the holder is sending.
 */
export interface DeliveryHold {
  /** The holder's token: a CONNECT's (connectHold) or a drain's own. */
  readonly token: string;
  /** How long the hold stands if its holder dies without releasing it (ms); then others go on without it. */
  readonly leaseMs: number;
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

/**
 * QoS 1 and 2 messages on their way to a client: in flight (with packet ids) or queued. The
 * conditions below hold atomically (each write is conditioned on them); what to do with the
 * answers (whether to drain, how long to hold) is the broker's to decide.
 */
export interface DeliveryStore {

  /**
   * Start QoS 1/2 deliveries to a connected client, in order: each message gets a packet id and is
   * recorded in flight before this returns. Only while the client is still on `connectionId`, no
   * one holds its deliveries (or the hold lapsed), it has room under `receiveMaximum` (counted when
   * below 65535) and nothing is queued ahead; otherwise 'queue'. Once one must queue, so do the
   * rest. Packet ids are claimed atomically from the session's counter (concurrent callers never
   * share one, nor make one another retry), 1..65535 and wrapping, skipping ids still in flight
   * [MQTT-2.2.1-3]; they need not be consecutive. A message whose exactly-once mark exists is
   * 'duplicate' and not delivered again; the others still start. A caller that dies part way may
   * leave ids unused and the count of messages in flight too high for a while (setInFlight).
   */
  startDeliveries(clientId: string, connectionId: string, receiveMaximum: number, messages: readonly QueuedMessage[]): Promise<DeliveryStart[]>;
  /**
   * Queue a message for a client that cannot take it now, behind the ones queued before. Not
   * queued: the session is gone or past its expiry, the message's exactly-once mark exists, or
   * the queue is at its bound, in messages or in bytes with this one (`full`: the queue keeps its
   * oldest).
   */
  enqueue(message: QueuedMessage, bound?: QueueBound): Promise<EnqueueResult>;
  /**
   * Move queued messages into flight, oldest first, while the client has room; each gets a packet
   * id and is recorded in flight with it, in rounds of at most `batch` messages; expired ones are
   * dropped. Only while the client is on `connectionId` and no one else holds its deliveries (or
   * that hold lapsed): the claim takes `hold` (renewed each round) until releaseHold, so nothing
   * new overtakes them before they are sent.
   */
  claimQueued(clientId: string, connectionId: string, receiveMaximum: number, hold: DeliveryHold, batch: number): Promise<ClaimedMessages>;
  /**
   * What the holder (a CONNECT: connectHold; a drain) held back is sent: deliveries may start
   * again. Only with nothing queued, or no room for it (`queued`: drain again first); `not-held`:
   * the caller does not hold it (never did, its lease lapsed, or another connection has the session).
   */
  releaseHold(clientId: string, connectionId: string, hold: string, receiveMaximum: number): Promise<'released' | 'queued' | 'not-held'>;
  /** Messages in flight to a client, in the order they were sent: resent when it reconnects. */
  listOutgoing(clientId: string): Promise<OutgoingMessage[]>;
  /** PUBREC received: the message is now awaiting PUBCOMP (its payload is let go). False if it was not in flight. */
  releaseOutgoing(clientId: string, packetId: number): Promise<boolean>;
  /**
   * PUBACK or PUBCOMP received: the message is no longer in flight, and its slot under the Receive
   * Maximum (counted when below 65535) is free; an acknowledgement repeated later frees none.
   * `queued`: messages wait for the room this frees. Completions of one client made at the same
   * time may be written together.
   */
  completeOutgoing(clientId: string, packetId: number, receiveMaximum: number): Promise<{ queued: boolean }>;
  /** A resumed session's count of messages in flight, as found on reconnect (its Receive Maximum may differ now). */
  setInFlight(clientId: string, count: number): Promise<void>;
}
