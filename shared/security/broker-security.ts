/**
 * Authentication and authorization for the broker: who a CONNECT is (the identity of a device
 * certificate the listener verified, a user name and password checked against the Security
 * table, a JWT, an identity API Gateway's `$connect` established, or anonymous), and what that
 * identity may publish, subscribe to and receive.
 *
 * A password check costs a scrypt hash (tenths of a second of CPU), so before hashing: a password
 * this container verified or refused lately against the same stored hash is answered from memory
 * (recent-password-checks.ts), and a source address with `authFailureRate` failed checks in the
 * current window is refused (CONNACK 0x9F Connection rate exceeded / 3.1.1 return code 3) without
 * hashing. That costs one strongly consistent read of the address's counter, made together with
 * the user's, and an increment on each failure only.
 */
import type { RateLimit } from '../broker/context';
import { rateWindow } from '../broker/limits';
import type { Authentication, AuthenticationRequest, ConnectionRecord, DoorIdentity, Identity, Security, SecurityStore, TopicAccess } from '../broker/ports';
import { ReasonCode } from '../protocol/reason-codes';
import { parseAclRule, SubjectAcl, type AclRule } from './acl';
import { looksLikeJwt, type JwtVerifier, type TokenCheck } from './jwt';
import { unknownUserHash, verifyPassword } from './password';
import { RecentPasswordChecks } from './recent-password-checks';

export interface SecurityPolicy {
  /** May a client that presents no credentials connect? */
  readonly allowAnonymous: boolean;
  /** Verifies JWTs presented as the password (and at API Gateway's `$connect`); absent = no JWTs. */
  readonly jwt?: JwtVerifier;
  /**
   * The configured ACL patterns. When set (even to no rules), every client is limited to what
   * these and its own rules grant. When absent, only clients with rules of their own are limited.
   */
  readonly acl?: readonly AclRule[];
  /**
   * Whether an identity from the door may be waiting for this connection (API Gateway's
   * connections; the listener has no `$connect`). Saves a lookup per anonymous device CONNECT.
   */
  readonly doorIdentityPossible?: (connectionId: string) => boolean;
  /** Failed password checks per source address before its checks are refused unhashed; null = no limit; absent = DEFAULT_AUTH_FAILURE_RATE. */
  readonly authFailureRate?: RateLimit | null;
  /** Recent password checks remembered, in each of two tables (accepted, refused); absent = DEFAULT_PASSWORD_CACHE_ENTRIES. */
  readonly passwordCacheEntries?: number;
}

/**
 * 20 failed checks a minute per address: a person mistyping, or a handful of devices behind one
 * NAT with a stale password, stay under it; a guesser gets 20 hashes a minute per address.
 */
export const DEFAULT_AUTH_FAILURE_RATE: RateLimit = { count: 20, perSeconds: 60 };
export const DEFAULT_PASSWORD_CACHE_ENTRIES = 10_000;

/** Longer user names are never stored (and would not fit a DynamoDB key). */
export const MAX_USERNAME_BYTES = 256;

const unrestricted: TopicAccess = { canConnect: () => true, canPublish: () => true, canReceive: () => true, canSubscribe: () => true, denialsFor: () => [] };
const nothing: TopicAccess = { canConnect: () => false, canPublish: () => false, canReceive: () => false, canSubscribe: () => false, denialsFor: () => [] };

/** The broker's Security port, and what API Gateway's `$connect` needs besides (token check, door identity). */
export class BrokerSecurity implements Security {
  private readonly recent: RecentPasswordChecks;
  private readonly failureRate: RateLimit | undefined;
  /** scrypt verifications made (for tests and the benchmark). */
  passwordHashes = 0;

  constructor(
    readonly policy: SecurityPolicy,
    private readonly store: SecurityStore,
    private readonly now: () => number = Date.now,
  ) {
    this.recent = new RecentPasswordChecks(policy.passwordCacheEntries ?? DEFAULT_PASSWORD_CACHE_ENTRIES, now);
    this.failureRate = policy.authFailureRate === null ? undefined : (policy.authFailureRate ?? DEFAULT_AUTH_FAILURE_RATE);
  }

  async authenticate(request: AuthenticationRequest): Promise<Authentication> {
    // [MQTT-4.12.0-1] an authentication method the server does not support: 0x8C (or 0x87)
    if (request.authenticationMethod !== undefined) {
      return refused(ReasonCode.BadAuthenticationMethod, `authentication method ${request.authenticationMethod} is not offered`);
    }
    // Mutual TLS: the listener verified the certificate; it names the user (as mosquitto's use_identity_as_username).
    if (request.certificateUser !== undefined) return this.checkCertificateUser(request.certificateUser);
    const { username, password } = request;
    if (username !== undefined && Buffer.byteLength(username) > MAX_USERNAME_BYTES) {
      return refused(ReasonCode.BadUserNameOrPassword, 'user name too long');
    }
    if (password !== undefined) {
      const secret = password.toString('utf8');
      // The token names the user; a user name beside it is not used (clients such as MQTT.js and
      // mosquitto_pub cannot send a password without one).
      if (this.policy.jwt && looksLikeJwt(secret)) return this.checkToken(await this.policy.jwt.verify(secret));
      if (username === undefined) return refused(ReasonCode.BadUserNameOrPassword, 'a password without a user name that is not a valid token');
      return this.checkPassword(username, secret, request.sourceAddress);
    }
    if (username !== undefined) return refused(ReasonCode.BadUserNameOrPassword, 'user name without a password');
    if (this.policy.doorIdentityPossible?.(request.connectionId) ?? false) {
      const identity = await this.store.takeDoorIdentity(request.connectionId);
      if (identity) return { ok: true, identity: identityOf(identity) };
    }
    if (this.policy.allowAnonymous) return { ok: true, identity: {} };
    return refused(ReasonCode.NotAuthorized, 'anonymous clients are not allowed');
  }

  /** For API Gateway's `$connect`: a token from the query string. */
  verifyToken(token: string): Promise<TokenCheck> {
    if (!this.policy.jwt) return Promise.resolve({ ok: false, reason: 'JWT authentication is not configured' });
    return this.policy.jwt.verify(token);
  }

  /** Keep the identity `$connect` established until the connection's CONNECT takes it. */
  rememberDoorIdentity(connectionId: string, identity: DoorIdentity, expiresAtSeconds: number): Promise<void> {
    return this.store.putDoorIdentity(connectionId, identity, expiresAtSeconds);
  }

  /** What the client of this connection may do; its identity came from its CONNECT. */
  access(connection: Pick<ConnectionRecord, 'clientId' | 'username' | 'acl'>): TopicAccess {
    if (this.policy.acl === undefined && connection.acl === undefined) return unrestricted;
    let own: AclRule[];
    try {
      own = (connection.acl ?? []).map(parseAclRule);
    } catch {
      return nothing; // rules that no longer parse grant nothing: fail closed
    }
    return new SubjectAcl([...(this.policy.acl ?? []), ...own], {
      clientId: connection.clientId,
      ...(connection.username !== undefined ? { username: connection.username } : {}),
    });
  }

  private checkCertificateUser(username: string): Authentication {
    if (username === '' || Buffer.byteLength(username) > MAX_USERNAME_BYTES) return refused(ReasonCode.BadUserNameOrPassword, 'certificate identity empty or too long');
    return { ok: true, identity: { username } };
  }

  private async checkPassword(username: string, password: string, source: string | undefined): Promise<Authentication> {
    const failures = source !== undefined && this.failureRate ? rateWindow(this.now(), 'authfail', source, this.failureRate) : undefined;
    const [user, failed] = await Promise.all([this.store.getUser(username), failures ? this.store.readWindow(failures.key, failures.windowStart) : 0]);
    const stored = user?.passwordHash ?? unknownUserHash;
    const digest = this.recent.digest(username, password, stored);
    if (user && this.recent.knownRight(digest)) return { ok: true, identity: identityOf(user) };
    if (failures && failed >= this.failureRate!.count) {
      return refused(ReasonCode.ConnectionRateExceeded, `${failed} failed authentications from this address in ${this.failureRate!.perSeconds} s`);
    }
    // An unknown user costs a verification too, so timing does not reveal which names exist.
    const valid = !this.recent.knownWrong(digest) && (await this.verify(password, stored));
    this.recent.remember(digest, Boolean(user) && valid);
    if (user && valid) return { ok: true, identity: identityOf(user) };
    if (failures) await this.store.countInWindow(failures.key, failures.windowStart, this.failureRate!.perSeconds, 1);
    return refused(ReasonCode.BadUserNameOrPassword, user ? 'wrong password' : 'unknown user');
  }

  private verify(password: string, stored: string): Promise<boolean> {
    this.passwordHashes++;
    return verifyPassword(password, stored);
  }

  private checkToken(check: TokenCheck): Authentication {
    if (!check.ok) return refused(check.unavailable ? ReasonCode.ServerUnavailable : ReasonCode.BadUserNameOrPassword, check.reason);
    const bad = invalidRule(check.identity.acl);
    if (bad) return refused(ReasonCode.NotAuthorized, `the token's ACL rule "${bad}" is not valid`);
    return { ok: true, identity: identityOf({ ...check.identity, tokenExpiresAt: check.identity.expiresAt * 1000 }) };
  }
}

function identityOf(source: { username: string; acl?: readonly string[]; tokenExpiresAt?: number }): Identity {
  return {
    username: source.username,
    ...(source.acl !== undefined ? { acl: source.acl } : {}),
    ...(source.tokenExpiresAt !== undefined ? { tokenExpiresAt: source.tokenExpiresAt } : {}),
  };
}

function invalidRule(rules: readonly string[] | undefined): string | undefined {
  return rules?.find((rule) => {
    try {
      parseAclRule(rule);
      return false;
    } catch {
      return true;
    }
  });
}

function refused(reasonCode: number, why: string): Authentication {
  return { ok: false, reasonCode, why };
}
