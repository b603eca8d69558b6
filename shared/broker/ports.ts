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
}

/** The part of a session that delivery needs: where the client is now, and how it speaks. */
export interface SessionRecord {
  readonly clientId: string;
  readonly connectionId?: string;
  readonly protocolVersion: ProtocolVersion;
  /** 5.0: the largest packet the client accepts (CONNECT Maximum Packet Size); absent = no limit. */
  readonly maximumPacketSize?: number;
}

export interface SubscriptionOptions {
  readonly qos: QoS;
  readonly noLocal?: boolean;
  readonly retainAsPublished?: boolean;
  readonly retainHandling?: number;
}

export interface Subscription extends SubscriptionOptions {
  readonly clientId: string;
  readonly filter: string;
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
}

/** A QoS 1 or 2 message sent to a client and not yet fully acknowledged. */
export interface OutgoingMessage extends ApplicationMessage {
  readonly clientId: string;
  readonly packetId: number;
}

export interface OpenSessionRequest {
  readonly clientId: string;
  readonly connectionId: string;
  readonly protocolVersion: ProtocolVersion;
  readonly cleanStart: boolean;
  readonly maximumPacketSize?: number;
}

export interface OpenSessionResult {
  readonly sessionPresent: boolean;
  /** The connection that held this client id until now, which must be closed (takeover). */
  readonly previousConnectionId?: string;
  /** How that connection speaks, so it is told in its own protocol version. */
  readonly previousProtocolVersion?: ProtocolVersion;
}

export interface BrokerStore {
  getConnection(connectionId: string): Promise<ConnectionRecord | undefined>;
  putConnection(connection: ConnectionRecord): Promise<void>;
  deleteConnection(connectionId: string): Promise<void>;

  openSession(request: OpenSessionRequest): Promise<OpenSessionResult>;
  /** Detach the connection from its session; `endSession` deletes the session's state too. */
  closeSession(clientId: string, connectionId: string, endSession: boolean, expiryInterval: number): Promise<void>;
  getSessions(clientIds: readonly string[]): Promise<Map<string, SessionRecord>>;

  /** Store the subscriptions (replacing any with the same filter) so PUBLISH finds them. */
  subscribe(clientId: string, subscriptions: readonly Subscription[]): Promise<void>;
  /** Remove subscriptions; for each filter, whether it existed. */
  unsubscribe(clientId: string, filters: readonly string[]): Promise<boolean[]>;
  /** Every subscription whose filter matches the topic name, read strongly consistently. */
  findSubscriptions(topic: string): Promise<Subscription[]>;

  /** `count` packet identifiers for messages to this client; empty if the session is gone. */
  allocatePacketIds(clientId: string, count: number): Promise<number[]>;
  /** Record messages in flight to their clients (any number of clients, batched). */
  putOutgoing(messages: readonly OutgoingMessage[]): Promise<void>;
  /** PUBREC received: the message is now awaiting PUBCOMP. False if it was not in flight. */
  releaseOutgoing(clientId: string, packetId: number): Promise<boolean>;
  /** PUBACK or PUBCOMP received. False if it was not in flight. */
  completeOutgoing(clientId: string, packetId: number): Promise<boolean>;

  /** A QoS 2 PUBLISH arrived: true the first time for this packet id, false for a resend. */
  recordIncomingQos2(clientId: string, packetId: number): Promise<boolean>;
  /** PUBREL arrived: forget the packet id. False if it was not known. */
  releaseIncomingQos2(clientId: string, packetId: number): Promise<boolean>;
}

export type DeliveryResult = 'delivered' | 'gone';

/** Bytes to a connection and closing it, through an `@connections` API (either door). */
export interface ConnectionGateway {
  send(connectionId: string, data: Buffer): Promise<DeliveryResult>;
  close(connectionId: string): Promise<void>;
}

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
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
