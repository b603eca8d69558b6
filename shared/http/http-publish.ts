/**
 * HTTP publish, in the shape of AWS IoT Core's HTTPS publish: `POST /topics/{topic}?qos=0|1&retain=true|false`,
 * the payload as the body. Authenticated as a CONNECT is (credentials.ts, the broker's Security
 * port: the same users, JWT settings and anonymous policy), authorized by the same ACL, and
 * published through the broker's own path (shared/broker/application-message.ts), so routing,
 * retained messages, No Local and whatever routing triggers behave as for a PUBLISH.
 *
 * The publisher has no MQTT connection: its client id is `http:<user name>` (`http:` when
 * anonymous), what No Local compares and `%c` stands for in ACL rules. The answer comes once the
 * message is retained (when asked) and every delivery is in flight or queued: at QoS 1 that is
 * what a PUBACK would have waited for. QoS 0 takes the same path (a subscriber at QoS 0 is sent
 * it only while connected). QoS 2 is not offered, as IoT Core does not.
 */
import { publishApplicationMessage, type Publisher } from '../broker/application-message';
import type { BrokerDeps } from '../broker/context';
import { StoreUnavailableError } from '../broker/ports';
import { encodePacket } from '../protocol/codec';
import { credentialsOf, WWW_AUTHENTICATE } from './credentials';
import { authenticationStatus, refusalStatus } from './http-status';

export interface HttpPublishRequest {
  /** The topic name, percent-decoded from the path after `/topics/`. */
  readonly topic: string;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly authorization?: string;
  readonly body: Buffer;
  /** The client's address (failed password checks are limited per address). */
  readonly sourceAddress?: string;
  /** A name for this request in the logs and the authentication request (never a connection's id). */
  readonly requestId: string;
}

export interface HttpResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The client id of an HTTP publisher. */
export function httpPublisherId(username: string | undefined): string {
  return `http:${username ?? ''}`;
}

export async function handleHttpPublish(deps: BrokerDeps, request: HttpPublishRequest): Promise<HttpResponse> {
  const qos = flag(request.query.qos, { '0': 0, '1': 1 } as const, 0);
  if (qos === undefined) return answer(400, 'qos must be 0 or 1');
  const retain = flag(request.query.retain, { true: true, false: false } as const, false);
  if (retain === undefined) return answer(400, 'retain must be true or false');
  if (request.topic === '') return answer(400, 'no topic: POST /topics/{topic}');

  // The PUBLISH this would be, against the broker's maximum packet size ([MQTT-3.2.2-15] for the server's side).
  const size = encodePacket({ cmd: 'publish', topic: request.topic, payload: request.body, qos, retain, dup: false, ...(qos > 0 ? { messageId: 1 } : {}) }, 4).length;
  if (size > deps.config.maximumPacketSize) return answer(413, `the message is ${size} bytes as an MQTT PUBLISH; the broker takes at most ${deps.config.maximumPacketSize}`);

  const credentials = credentialsOf(request.authorization);
  if (credentials === 'malformed') return unauthorized('the Authorization header is neither Basic nor Bearer');
  try {
    const authentication = await deps.security.authenticate({
      connectionId: `http:${request.requestId}`,
      ...credentials,
      ...(request.sourceAddress !== undefined ? { sourceAddress: request.sourceAddress } : {}),
    });
    if (!authentication.ok) {
      deps.log.info('HTTP publish refused: authentication', { requestId: request.requestId, why: authentication.why });
      const status = authenticationStatus(authentication.reasonCode);
      return status === 401 ? unauthorized('authentication failed') : answer(status, authentication.why);
    }
    const { username, acl } = authentication.identity;
    const publisher: Publisher = {
      clientId: httpPublisherId(username),
      ...(username !== undefined ? { username } : {}),
      ...(acl !== undefined ? { acl } : {}),
      hearsRefusals: true,
    };
    const published = await publishApplicationMessage(deps, { topic: request.topic, payload: request.body, qos, retain }, publisher);
    if (!published.ok) return answer(refusalStatus(published.reasonCode), published.why);
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'OK', topic: request.topic, qos, retain, matched: published.matched }) };
  } catch (error) {
    // The message may be delivered to some and not others: the publisher is not told it was accepted, and may try again.
    deps.log.warn('HTTP publish failed', { requestId: request.requestId, topic: request.topic, error: String(error) });
    return answer(error instanceof StoreUnavailableError ? 503 : 500, 'the message was not accepted; try again');
  }
}

function flag<T>(raw: string | undefined, values: Readonly<Record<string, T>>, fallback: T): T | undefined {
  if (raw === undefined) return fallback;
  return Object.hasOwn(values, raw) ? values[raw] : undefined;
}

function answer(statusCode: number, message: string): HttpResponse {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message }) };
}

function unauthorized(message: string): HttpResponse {
  return { ...answer(401, message), headers: { 'content-type': 'application/json', 'www-authenticate': WWW_AUTHENTICATE } };
}
