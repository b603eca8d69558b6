/**
 * Requests to a listener task's delivery endpoint carry a signature: HMAC-SHA256, keyed with a
 * secret that only the functions that deliver and the listener tasks know (in the cloud a
 * Secrets Manager secret the stack creates; in the local harness random bytes made at start),
 * over the method, the path as sent, a timestamp (epoch milliseconds) and the body. The listener
 * refuses a request whose signature is missing or wrong, or whose timestamp is further than
 * SIGNATURE_WINDOW_MS from its own clock. API Gateway's own `@connections` API is signed by the
 * SDK with SigV4 and is not touched by this.
 */
import { createHmac, timingSafeEqual, type Hmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-mqtt-delivery-signature';
export const TIMESTAMP_HEADER = 'x-mqtt-delivery-timestamp';

/** How far a request's timestamp may be from the listener's clock, either way. */
export const SIGNATURE_WINDOW_MS = 60_000;

/** A shorter secret is refused where it is configured: it would be guessable. */
export const MIN_DELIVERY_SECRET_LENGTH = 32;

/** Thrown by a gateway client that cannot sign (no secret configured, or it could not be fetched). */
export class DeliverySigningError extends Error {
  override readonly name = 'DeliverySigningError';
}

function hmacOver(secret: string, method: string, path: string, timestamp: string): Hmac {
  // Method and path hold no newline (a request target cannot), so the three lines are unambiguous.
  return createHmac('sha256', secret).update(`${method.toUpperCase()}\n${path}\n${timestamp}\n`);
}

/** The headers that sign one request. `path` is the request target as sent: path and query. */
export function signatureHeaders(secret: string, method: string, path: string, body: Uint8Array | undefined, now: number): Record<string, string> {
  const timestamp = String(now);
  const hmac = hmacOver(secret, method, path, timestamp);
  if (body && body.length > 0) hmac.update(body);
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: hmac.digest('hex') };
}

/** A check under way: feed it the body as it arrives, then ask whether the signature holds. */
export interface SignatureCheck {
  update(chunk: Uint8Array): void;
  valid(): boolean;
}

/**
 * Starts checking a request from its headers; undefined when it cannot be valid whatever its body
 * (no signature, or a timestamp that is missing or outside the window).
 */
export function beginSignatureCheck(
  secret: string,
  method: string,
  path: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  now: number,
): SignatureCheck | undefined {
  const timestamp = headers[TIMESTAMP_HEADER];
  const signature = headers[SIGNATURE_HEADER];
  if (typeof timestamp !== 'string' || typeof signature !== 'string' || !/^\d{1,16}$/.test(timestamp)) return undefined;
  if (Math.abs(Number(timestamp) - now) > SIGNATURE_WINDOW_MS) return undefined;
  const hmac = hmacOver(secret, method, path, timestamp);
  return {
    update: (chunk) => void hmac.update(chunk),
    valid: () => {
      const expected = hmac.digest();
      const given = Buffer.from(signature, 'hex');
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}
