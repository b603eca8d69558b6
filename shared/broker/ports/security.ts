/** State that authentication and the limits keep. */

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
