/**
 * Connection ids say which door a connection came through. API Gateway's ids are its own
 * (base64, never a '.'); the listener's are `l.<base64url of its delivery endpoint>.<random>`,
 * so a handler knows which listener task holds the socket without looking it up.
 */
import { randomBytes } from 'node:crypto';

const LISTENER_TAG = 'l';

export function newListenerConnectionId(deliveryEndpoint: string): string {
  return [LISTENER_TAG, Buffer.from(deliveryEndpoint).toString('base64url'), randomBytes(9).toString('base64url')].join('.');
}

/** The delivery endpoint (e.g. `http://10.0.1.7:8090`) of a listener connection; undefined for API Gateway's. */
export function listenerEndpointOf(connectionId: string): string | undefined {
  const parts = connectionId.split('.');
  if (parts.length !== 3 || parts[0] !== LISTENER_TAG) return undefined;
  return Buffer.from(parts[1]!, 'base64url').toString();
}
