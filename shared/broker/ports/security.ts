/** Who a client is and what it may do (the Security port), and the state that authentication and the limits keep. */
import type { ConnectionRecord } from './connections';

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
  /** When the token expires (epoch ms). */
  readonly tokenExpiresAt?: number;
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
  /** The counter `key`'s total in the window that starts at `windowStart` (0 when none), read without counting. */
  readWindow(key: string, windowStart: number): Promise<number>;
}

/** Who connected: absent user name = anonymous. */
export interface Identity {
  readonly username?: string;
  readonly acl?: readonly string[];
  /** A token's identity lasts until the token expires (epoch ms); absent = for the whole connection. */
  readonly tokenExpiresAt?: number;
}

export interface AuthenticationRequest {
  readonly connectionId: string;
  readonly username?: string;
  readonly password?: Buffer;
  /** 5.0 enhanced authentication, which this broker does not offer. */
  readonly authenticationMethod?: string;
  /**
   * The client's network address, as its door saw it (the listener: from the PROXY protocol
   * header when it is on; API Gateway: the event's sourceIp); failed password checks are limited per address.
   */
  readonly sourceAddress?: string;
  /**
   * The user name the listener took from the client's verified certificate (mutual TLS): the
   * certificate is the authentication, so the CONNECT's user name and password are not used.
   */
  readonly certificateUser?: string;
}

export type Authentication = { ok: true; identity: Identity } | { ok: false; reasonCode: number; why: string };

/** What one connected client may do with topics. */
export interface TopicAccess {
  /** The client id may be used by this identity (the ACL's connect rules). */
  canConnect(): boolean;
  canPublish(topic: string): boolean;
  /** A message on this topic may be delivered to the client (retained-message replay checks this). */
  canReceive(topic: string): boolean;
  /** `filter` as the client sent it: `$share/<share name>/<filter>` for a shared subscription (acl.ts). */
  canSubscribe(filter: string): boolean;
  /**
   * The deny patterns (with %u/%c substituted) that a granted filter overlaps: stored with the
   * subscription, so a delivery on a topic one matches is skipped without reading the ACL.
   */
  denialsFor(filter: string): readonly string[];
}

/**
 * Authentication and topic access, as the handlers consult them: who a CONNECT is, and what a
 * connected client may publish, subscribe to and receive. Implemented by shared/security/.
 */
export interface Security {
  authenticate(request: AuthenticationRequest): Promise<Authentication>;
  /** What the client of this connection may do; its identity came from its CONNECT. */
  access(connection: Pick<ConnectionRecord, 'clientId' | 'username' | 'acl'>): TopicAccess;
}
