/** Connections: what the broker knows about one network connection, from its CONNECT to its end. */
import type { ProtocolVersion } from '../../protocol/codec';
import type { WillMessage } from './messages';

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
  /** The connection's token expires then (epoch ms): its next packet is answered with DISCONNECT 0xA0 and the close. */
  readonly tokenExpiresAt?: number;
}

export interface ConnectionChanges {
  /** A topic alias the client set (alias, topic name). */
  readonly topicAlias?: readonly [number, string];
}

/** What a DISCONNECT changes on its connection before the connection ends. */
export interface ConnectionEndChanges {
  readonly sessionExpiryInterval?: number;
  /** [MQTT-3.1.2-10] a normal DISCONNECT discards the will. */
  readonly dropWill?: boolean;
}

/** The connection records: one per network connection, from its CONNECT until its end. */
export interface ConnectionStore {
  getConnection(connectionId: string): Promise<ConnectionRecord | undefined>;
  /** Many records at once (one BatchGetItem, strongly consistent): those that exist, by connection id. */
  getConnections(connectionIds: readonly string[]): Promise<Map<string, ConnectionRecord>>;
  putConnection(connection: ConnectionRecord): Promise<void>;
  updateConnection(connectionId: string, changes: ConnectionChanges): Promise<void>;
  /**
   * Start ending a connection: its record as it stands (with `changes` made, as a DISCONNECT
   * makes them), for one caller at a time. The record stays until deleteConnection, so if that
   * caller dies half way, the connection is ended again (by its close, or the sweeper) once the
   * claim's lease (`leaseMs`) has passed. Undefined: the connection is gone, or being ended.
   */
  claimConnectionEnd(connectionId: string, leaseMs: number, changes?: ConnectionEndChanges): Promise<ConnectionRecord | undefined>;
  /** The connection's end is complete: forget it. */
  deleteConnection(connectionId: string): Promise<void>;
}
