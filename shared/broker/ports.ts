/**
 * The ports the broker core needs from the outside world. The DynamoDB store and the
 * @connections gateway implement them; the core never imports an SDK.
 */
import type { ProtocolVersion, QoS, UserProperties } from '../protocol/codec';

export interface WillMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties?: MessageProperties;
  /** 5.0 Will Delay Interval, seconds. */
  readonly delayInterval?: number;
}

/** What the broker knows about one network connection, from its CONNECT. */
export interface ConnectionRecord {
  readonly connectionId: string;
  readonly clientId: string;
  readonly protocolVersion: ProtocolVersion;
  readonly keepalive: number;
  readonly cleanStart: boolean;
  /** Seconds the session outlives the connection; 0xFFFFFFFF = never expires. */
  readonly sessionExpiryInterval: number;
  readonly connectedAt: number;
  readonly will?: WillMessage;
  /** The client's Receive Maximum: QoS 1 and 2 messages it accepts unacknowledged (5.0; 65535 otherwise). */
  readonly receiveMaximum?: number;
  /** 5.0: the largest packet the client accepts. */
  readonly maximumPacketSize?: number;
  /** 5.0: the client's Topic Alias Maximum for packets the broker sends it. */
  readonly topicAliasMaximum?: number;
  /** 5.0: false when the client asked for no reason strings or user properties on acknowledgements. */
  readonly requestProblemInformation?: boolean;
  /** 5.0: topic aliases the client set on its PUBLISHes (alias -> topic name). */
  readonly topicAliases?: Readonly<Record<string, string>>;
  /** The authenticated user (absent: anonymous); see shared/security/. */
  readonly username?: string;
  /** The user's own ACL rules, from its user record or token; absent = none of its own. */
  readonly acl?: readonly string[];
}

/** The part of a session that delivery needs: where the client is now, and how it speaks. */
export interface SessionRecord {
  readonly clientId: string;
  readonly connectionId?: string;
  readonly protocolVersion: ProtocolVersion;
  /** 5.0: the largest packet the client accepts (CONNECT Maximum Packet Size); absent = no limit. */
  readonly maximumPacketSize?: number;
  /** QoS 1 and 2 messages the client accepts unacknowledged (5.0 Receive Maximum; 65535 otherwise). */
  readonly receiveMaximum: number;
  /** 5.0: topic aliases the client accepts from the broker; 0 = none. */
  readonly topicAliasMaximum: number;
}

export interface SubscriptionOptions {
  readonly qos: QoS;
  readonly noLocal?: boolean;
  readonly retainAsPublished?: boolean;
  readonly retainHandling?: number;
  /** 5.0 Subscription Identifier, returned with every message the subscription matches. */
  readonly subscriptionIdentifier?: number;
}

export interface Subscription extends SubscriptionOptions {
  readonly clientId: string;
  /** The topic filter without any `$share/<group>/` prefix. */
  readonly filter: string;
  /** The share name of a shared subscription (`$share/<group>/<filter>`). */
  readonly shareGroup?: string;
}

/** The MQTT 5 properties that travel with an application message, untouched. */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: UserProperties;
}

export interface ApplicationMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties?: MessageProperties;
  /** Epoch ms after which the message is not delivered (from its Message Expiry Interval). */
  readonly expiresAtMs?: number;
  /** A QoS 2 PUBLISH's receipt (see BrokerStore.receiveQos2): what makes its deliveries exactly once. */
  readonly origin?: QoS2Receipt;
}

/** One message on its way to one client: what the client will receive, before a packet id. */
export interface QueuedMessage extends Omit<ApplicationMessage, 'origin'> {
  readonly clientId: string;
  readonly subscriptionIdentifiers?: readonly number[];
  /**
   * A QoS 2 delivery of a QoS 2 PUBLISH: the mark `key` in the publisher's session (`clientId`)
   * is written in the same transaction as the delivery, which fails if the mark exists. Routing
   * the PUBLISH again (its handler died and the publisher resent it) delivers it to no one twice.
   */
  readonly once?: { readonly clientId: string; readonly key: string };
}

/** A QoS 2 PUBLISH received from a client and remembered until its PUBREL. */
export interface QoS2Receipt {
  readonly clientId: string;
  /** Unique to this receipt of the packet id (a later message may reuse the id after PUBREL). */
  readonly id: string;
  /** Its deliveries are all made (or queued): a resend is acknowledged without routing it again. */
  readonly routed: boolean;
}

/** How one QoS 1/2 message to a connected client starts: in flight with this packet id, queued, or not at all (delivered before). */
export type DeliveryStart = { readonly packetId: number } | 'queue' | 'duplicate';

/** A QoS 1 or 2 message sent to a client and not yet fully acknowledged. */
export interface OutgoingMessage extends QueuedMessage {
  readonly packetId: number;
  /** `pubrel`: the client sent PUBREC and the broker's PUBREL awaits PUBCOMP. */
  readonly state?: 'publish' | 'pubrel';
}

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

/** A retained message as stored for its topic. */
export type RetainedMessage = ApplicationMessage;

/** A will whose delay has passed (or whose session ended), claimed for publishing exactly once. */
export interface DueWill {
  readonly clientId: string;
  readonly will: WillMessage;
  /** This scheduling of the will (its due time): what completeWill deletes, and its exactly-once marks' key. */
  readonly id: string;
}

/** What a DISCONNECT changes on its connection before the connection ends. */
export interface ConnectionEndChanges {
  readonly sessionExpiryInterval?: number;
  /** [MQTT-3.1.2-10] a normal DISCONNECT discards the will. */
  readonly dropWill?: boolean;
}

export interface OpenSessionRequest {
  readonly clientId: string;
  readonly connectionId: string;
  readonly protocolVersion: ProtocolVersion;
  readonly cleanStart: boolean;
  /**
   * The session lasts only as long as this connection (3.1.1 Clean Session 1, 5.0 Session Expiry
   * Interval 0): a connection that takes the client id over must not resume it.
   */
  readonly endsWithConnection?: boolean;
  readonly maximumPacketSize?: number;
  readonly receiveMaximum: number;
  readonly topicAliasMaximum: number;
}

export interface OpenSessionResult {
  readonly sessionPresent: boolean;
  /** The connection that held this client id until now, which must be closed (takeover). */
  readonly previousConnectionId?: string;
  /** How that connection speaks, so it is told in its own protocol version. */
  readonly previousProtocolVersion?: ProtocolVersion;
  /**
   * The connection the previous claim took the session from. Its CONNECT should have closed it;
   * if that CONNECT died first, it is still open, and this one closes it (usually it is long gone).
   */
  readonly earlierTakenOver?: { readonly connectionId: string; readonly protocolVersion: ProtocolVersion };
  /** A clean start ended a session whose delayed will was still pending: it is due now. */
  readonly endedSessionWill?: WillMessage;
}

export type CloseSessionResult = 'closed' | 'taken-over';

export interface ConnectionChanges {
  /** A topic alias the client set (alias, topic name). */
  readonly topicAlias?: readonly [number, string];
}

export interface BrokerStore {
  getConnection(connectionId: string): Promise<ConnectionRecord | undefined>;
  putConnection(connection: ConnectionRecord): Promise<void>;
  updateConnection(connectionId: string, changes: ConnectionChanges): Promise<void>;
  /**
   * Start ending a connection: its record as it stands (with `changes` made, as a DISCONNECT
   * makes them), for one caller at a time. The record stays until deleteConnection, so if that
   * caller dies half way, the connection is ended again (by its close, or the sweeper) once the
   * claim's lease has passed. Undefined: the connection is gone, or being ended.
   */
  claimConnectionEnd(connectionId: string, changes?: ConnectionEndChanges): Promise<ConnectionRecord | undefined>;
  /** The connection's end is complete: forget it. */
  deleteConnection(connectionId: string): Promise<void>;

  openSession(request: OpenSessionRequest): Promise<OpenSessionResult>;
  /**
   * Detach the connection from its session; `endSession` deletes the session's state too.
   * 'taken-over': another connection holds the session now, and nothing was changed.
   */
  closeSession(clientId: string, connectionId: string, endSession: boolean, expiryInterval: number): Promise<CloseSessionResult>;
  getSessions(clientIds: readonly string[]): Promise<Map<string, SessionRecord>>;
  /** Sessions whose expiry has passed: their state and routes are deleted. Returns how many, and their pending delayed wills (to publish now). */
  endExpiredSessions(now: number, limit: number): Promise<{ ended: number; wills: DueWill[] }>;

  /** Store the subscriptions (replacing any with the same filter); for each, whether it existed. */
  subscribe(clientId: string, subscriptions: readonly Subscription[]): Promise<boolean[]>;
  /** Remove subscriptions by filter as sent (`$share/g/f` included); for each, whether it existed. */
  unsubscribe(clientId: string, filters: readonly string[]): Promise<boolean[]>;
  /** Every subscription whose filter matches the topic name, read strongly consistently. */
  findSubscriptions(topic: string): Promise<Subscription[]>;

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

  /** A QoS 2 PUBLISH arrived: remember its packet id until PUBREL (before routing it); the receipt, new or the one remembered. */
  receiveQos2(clientId: string, packetId: number): Promise<QoS2Receipt>;
  /** The QoS 2 PUBLISH with this packet id is routed. */
  markQos2Routed(clientId: string, packetId: number): Promise<void>;
  /** PUBREL arrived: forget the packet id. False if it was not known. */
  releaseIncomingQos2(clientId: string, packetId: number): Promise<boolean>;
  /** QoS 2 messages received from the client and not yet released. */
  countIncomingQos2(clientId: string): Promise<number>;

  /** Store, replace or (empty payload) delete the retained message of a topic. */
  putRetained(message: RetainedMessage): Promise<void>;
  /** Retained messages whose topic matches the filter (wildcards included), unexpired. */
  findRetained(filter: string): Promise<RetainedMessage[]>;

  /** Publish this will at `dueAt` (epoch ms) unless the client reconnects first. */
  /** False: a connection holds the session again, which cancels the will (nothing is written). */
  scheduleWill(clientId: string, will: WillMessage, dueAt: number): Promise<boolean>;
  /** A new connection to the session: a pending delayed will is not published [MQTT-3.1.3-9]. */
  cancelWill(clientId: string): Promise<void>;
  /** Wills due by `now`, each removed as it is returned so it is published once. */
  claimDueWills(now: number, limit: number): Promise<DueWill[]>;
  /** A claimed will is published: delete it (unless a newer one replaced it). */
  completeWill(clientId: string, id: string): Promise<void>;

  /** The filters the client is subscribed to now (for the subscriptions-per-client limit). */
  subscriptionFilters(clientId: string): Promise<string[]>;
}

export type DeliveryResult = 'delivered' | 'gone';

/** Bytes to a connection and closing it, through an `@connections` API (either door). */
export interface ConnectionGateway {
  send(connectionId: string, data: Buffer): Promise<DeliveryResult>;
  /** Bytes to many connections: one request per listener task, one call per API Gateway connection. */
  sendMany(deliveries: ReadonlyArray<readonly [connectionId: string, data: Buffer]>): Promise<Map<string, DeliveryResult>>;
  close(connectionId: string): Promise<void>;
}

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A user who may connect with a password; managed with `npm run users`. */
export interface UserRecord {
  readonly username: string;
  /** A salted scrypt hash (shared/security/password.ts), never the password. */
  readonly passwordHash: string;
  /** The user's own ACL rules (shared/security/acl.ts); absent = none of its own. */
  readonly acl?: readonly string[];
}

/** An identity a door established before CONNECT: API Gateway's `$connect` checked a token. */
export interface DoorIdentity {
  readonly username: string;
  readonly acl?: readonly string[];
}

/** State that authentication and the limits keep: users, door identities, windowed counters. */
export interface SecurityStore {
  getUser(username: string): Promise<UserRecord | undefined>;
  putDoorIdentity(connectionId: string, identity: DoorIdentity, expiresAtSeconds: number): Promise<void>;
  /** Read and forget: a door identity serves one CONNECT. */
  takeDoorIdentity(connectionId: string): Promise<DoorIdentity | undefined>;
  /**
   * Add `amount` to the counter `key` for the fixed window that starts at `windowStart` (epoch
   * seconds) and lasts `windowSeconds`; returns the window's new total.
   */
  countInWindow(key: string, windowStart: number, windowSeconds: number, amount: number): Promise<number>;
}

/** Whether a connection still exists on its door (`GET @connections/{id}`), for the sweeper. */
export interface ConnectionProbe {
  /** 'gone': the door no longer knows it, or (listener) its task is unreachable. */
  probe(connectionId: string): Promise<'connected' | 'gone'>;
}

/** Every connection the broker knows, page by page: the sweeper's Scan, never a client path. */
export interface ConnectionDirectory {
  scanConnections(): AsyncIterable<readonly ConnectionRecord[]>;
}

/** Holding a connection's inbox: who holds it, and the next sequence number to handle. */
export interface InboxLease {
  readonly token: string;
  readonly next: number;
}

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
   * while it was held (see markPending); 'lost': it was not held any more.
   */
  release(connectionId: string, token: string, next: number): Promise<'released' | 'pending' | 'lost'>;
  removeParked(connectionId: string, sequences: readonly number[]): Promise<void>;
  /** The connection is gone: its lease and parked messages go too. */
  forget(connectionId: string): Promise<void>;
}

/**
 * The store could not do what was asked, for now: DynamoDB is unreachable, timed out or answered
 * 5xx after the SDK's retries ('unavailable'), or it kept throttling ('busy'). The adapter throws
 * it (translated by class, shared/store/store-errors.ts); the broker refuses the work with the
 * matching reason code (5.0: 0x88 Server unavailable / 0x89 Server busy; 3.1.1 CONNACK: 3) and
 * acknowledges nothing, so the client tries again later.
 */
export class StoreUnavailableError extends Error {
  constructor(
    readonly kind: 'unavailable' | 'busy',
    message: string,
  ) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * The hold a CONNECT takes on its session with its claim: deliveries wait (queued) until its client
 * has CONNACK, what was in flight and the queue [MQTT-3.2.0-1] [MQTT-4.4.0-1].
 */
export function connectHold(connectionId: string): string {
  return `connect:${connectionId}`;
}
