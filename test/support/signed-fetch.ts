/** fetch() to a listener's delivery endpoint, signed with its delivery secret as the gateway client signs. */
import { randomBytes } from 'node:crypto';
import { signatureHeaders } from '../../shared/gateway/delivery-signature';

/** A delivery secret for a listener a test starts itself. */
export function testDeliverySecret(): string {
  return randomBytes(32).toString('hex');
}

export function signedFetch(secret: string, url: string, init: { method?: string; body?: Buffer } = {}): Promise<Response> {
  const method = init.method ?? 'GET';
  const { pathname, search } = new URL(url);
  const headers = signatureHeaders(secret, method, pathname + search, init.body, Date.now());
  return fetch(url, { method, headers, ...(init.body ? { body: init.body } : {}) });
}
