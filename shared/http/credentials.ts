/**
 * HTTP credentials as a CONNECT would carry them: `Authorization: Basic` is a user name and
 * password; `Authorization: Bearer <JWT>` is the token as the password (BrokerSecurity takes a
 * JWT in the password, the user name beside it unused). No header: anonymous.
 */

export interface HttpCredentials {
  readonly username?: string;
  readonly password?: Buffer;
}

/** The credentials of an Authorization header; 'malformed' when it is neither Basic nor Bearer, or cannot be read. */
export function credentialsOf(authorization: string | undefined): HttpCredentials | 'malformed' {
  if (authorization === undefined || authorization.trim() === '') return {};
  const [scheme, value, ...rest] = authorization.trim().split(/\s+/);
  if (value === undefined || rest.length > 0) return 'malformed';
  switch (scheme!.toLowerCase()) {
    case 'basic': {
      // RFC 7617: base64 of user-id ":" password; the user id cannot contain a colon.
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return 'malformed';
      return { username: decoded.slice(0, colon), password: Buffer.from(decoded.slice(colon + 1), 'utf8') };
    }
    case 'bearer':
      return { password: Buffer.from(value, 'utf8') };
    default:
      return 'malformed';
  }
}

/** The challenge a 401 carries (RFC 9110 11.6.1): both schemes the HTTP doors read. */
export const WWW_AUTHENTICATE = 'Basic realm="mqtt", Bearer realm="mqtt"';
/** The challenge without Basic, which a browser would answer with a password prompt. */
export const BEARER_CHALLENGE = 'Bearer realm="mqtt"';
