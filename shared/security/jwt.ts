/**
 * JWT bearer tokens (jose): signed with a shared secret (HS*), a public key (PEM), or keys
 * published at a JWKS URL. The token names the user (claim `sub` unless configured) and may carry
 * the user's own ACL rules (claim `acl`: an array of rule strings, see acl.ts).
 *
 * An audience is required, so a token the issuer made for another service is refused; with a
 * JWKS URL an issuer too (an identity provider's keys sign tokens for other issuers and tenants),
 * and the URL must be https (keys fetched in the clear could be swapped on the way; plain http
 * is accepted on loopback only, for tests).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export interface JwtOptions {
  /** HMAC secret (HS256, HS384, HS512). */
  readonly secret?: string;
  /** A PEM public key (RSA, EC or Ed25519). */
  readonly publicKey?: string;
  /** Where the issuer publishes its keys, fetched and cached. */
  readonly jwksUrl?: string;
  /** Required with a JWKS URL. */
  readonly issuer?: string;
  /** Required: the `aud` the broker's tokens carry. */
  readonly audience?: string;
  /** The claim that holds the user name; default `sub`. */
  readonly usernameClaim?: string;
  /** The claim that holds the user's ACL rules; default `acl`. */
  readonly aclClaim?: string;
}

export interface TokenIdentity {
  readonly username: string;
  /** The token's own ACL rules, when it carries any. */
  readonly acl?: readonly string[];
  /** The token's `exp` (epoch seconds): a connection it opened is closed once it passes. */
  readonly expiresAt: number;
}

/** `unavailable`: the keys could not be fetched, which says nothing about the token. */
export type TokenCheck = { ok: true; identity: TokenIdentity } | { ok: false; reason: string; unavailable?: boolean };

export interface JwtVerifier {
  verify(token: string): Promise<TokenCheck>;
}

const HMAC = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Three base64url parts: what a compact JWS looks like (and a password almost never does). */
export function looksLikeJwt(value: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value);
}

/** An option that is missing or unsafe: `option` names it, `problem` says what to fix. */
export class JwtOptionsError extends Error {
  override readonly name = 'JwtOptionsError';
  constructor(
    readonly option: keyof JwtOptions,
    readonly problem: string,
  ) {
    super(`JWT ${option} ${problem}`);
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** The first option that is missing or unsafe, if any (once a key source is chosen). */
export function jwtOptionsProblem(options: JwtOptions): JwtOptionsError | undefined {
  if (!options.audience) {
    return new JwtOptionsError('audience', 'must be set when JWT authentication is on: it is the "aud" your tokens carry; without it a token the issuer made for another service would be accepted');
  }
  if (!options.jwksUrl) return undefined;
  let url: URL;
  try {
    url = new URL(options.jwksUrl);
  } catch {
    return new JwtOptionsError('jwksUrl', `"${options.jwksUrl}" is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    return new JwtOptionsError('jwksUrl', `must be an https:// URL (plain http only on loopback), got "${options.jwksUrl}"`);
  }
  if (!options.issuer) {
    return new JwtOptionsError('issuer', 'must be set with a JWKS URL: it is the "iss" your tokens carry; an identity provider\'s keys sign tokens for other issuers and tenants too');
  }
  return undefined;
}

/** Throws, with what to fix, when the options name no key, cannot be read, or leave out what a safe check needs. */
export function createJwtVerifier(options: JwtOptions): JwtVerifier {
  const sources = [options.secret, options.publicKey, options.jwksUrl].filter((s) => s !== undefined && s !== '');
  if (sources.length !== 1) throw new Error('JWT authentication needs exactly one of a secret, a public key (PEM) or a JWKS URL');
  const problem = jwtOptionsProblem(options);
  if (problem) throw problem;
  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (options.secret) {
    key = new TextEncoder().encode(options.secret);
    algorithms = HMAC;
  } else if (options.publicKey) {
    try {
      key = createPublicKey(options.publicKey.replaceAll('\\n', '\n'));
    } catch (error) {
      throw new Error(`the JWT public key is not a PEM public key (${(error as Error).message})`);
    }
    algorithms = ASYMMETRIC;
  } else {
    key = createRemoteJWKSet(new URL(options.jwksUrl!));
    algorithms = ASYMMETRIC;
  }
  const usernameClaim = options.usernameClaim ?? 'sub';
  const aclClaim = options.aclClaim ?? 'acl';

  return {
    async verify(token: string): Promise<TokenCheck> {
      let payload: JWTPayload;
      try {
        const verifyOptions = {
          algorithms,
          // A token without an expiry would be a password that can never be changed.
          requiredClaims: ['exp'],
          ...(options.issuer ? { issuer: options.issuer } : {}),
          audience: options.audience!,
        };
        // Two overloads of jwtVerify: a key, or a function that finds one (JWKS).
        ({ payload } = typeof key === 'function' ? await jwtVerify(token, key, verifyOptions) : await jwtVerify(token, key, verifyOptions));
      } catch (error) {
        if (error instanceof errors.JWKSTimeout || !(error instanceof errors.JOSEError)) {
          return { ok: false, reason: `JWT keys unavailable: ${String(error)}`, unavailable: true };
        }
        return { ok: false, reason: `${error.code}: ${error.message}` };
      }
      const username = payload[usernameClaim];
      if (typeof username !== 'string' || username === '') return { ok: false, reason: `claim "${usernameClaim}" is not a user name` };
      const acl = payload[aclClaim];
      if (acl !== undefined && !(Array.isArray(acl) && acl.every((rule) => typeof rule === 'string'))) {
        return { ok: false, reason: `claim "${aclClaim}" is not an array of ACL rules` };
      }
      return { ok: true, identity: { username, ...(acl !== undefined ? { acl: acl as string[] } : {}), expiresAt: payload.exp! } };
    },
  };
}
