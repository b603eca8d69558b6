/**
 * Server-sent events: `GET /events?filter=<topic filter>` (one filter per `filter` parameter,
 * repeatable) streams the messages that match as `text/event-stream`. Each stream is a
 * connection of this listener task whose MQTT the listener speaks for the client: it builds a
 * CONNECT (MQTT 5.0, clean start, a generated client id `sse:<random>`, the request's
 * credentials) and a SUBSCRIBE at QoS 0 for the filters, hands them to the packet handler as any
 * connection's packets, and turns what the handler sends back into HTTP:
 *
 * - CONNACK refused: 401 (WWW-Authenticate: Bearer), 429 or 503, before the stream starts;
 * - SUBACK with a refused filter: 403 (not authorized), 429 (quota) or 400;
 * - PUBLISH: one event, `id: <stream>.<n>`, `event: <topic>`, `data: <payload>` (see eventOf);
 * - DISCONNECT, or the connection closed: the response ends.
 *
 * Nothing is acknowledged (QoS 0). A comment line every `heartbeatMs` (or half the Server Keep
 * Alive, when the broker holds the connection to less) keeps proxies from taking the stream for
 * idle, with a PINGREQ into the connection, which the listener answers itself
 * ([MQTT-3.12.4-1]), so the keep-alive stays armed without an invocation. Closing the response
 * closes the connection as a socket's close does.
 *
 * Resuming: a browser reconnects on its own, sending `Last-Event-ID`. Each stream is a new clean
 * session, so what it gets on (re)connecting is the retained message of each topic its filters
 * match (the broker replays them to every new subscription), then live messages; a message
 * published while no stream was open reaches it only if it is still the retained one.
 * Last-Event-ID is not used beyond that.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { decodePacket, encodePacket, type Packet } from '../protocol/codec';
import { MqttFramer } from '../protocol/framer';
import { ReasonCode } from '../protocol/reason-codes';
import { checkTopicFilter } from '../protocol/topic';
import { BEARER_CHALLENGE, credentialsOf } from '../http/credentials';
import { authenticationStatus, refusalStatus } from '../http/http-status';
import type { Transport } from './transport';

/** The path the listener's HTTP doors serve the stream on. */
export const EVENTS_PATH = '/events';
export const DEFAULT_HEARTBEAT_MS = 20_000;
/** The keep-alive the generated CONNECT asks for; the heartbeat's PINGREQs keep it armed. */
const KEEP_ALIVE_SECONDS = 60;
const PINGREQ = Buffer.from([0xc0, 0x00]);
/** Marks a payload sent as base64 (not UTF-8, a CR in it, or beginning with this marker itself). */
export const BASE64_MARKER = 'base64:';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export interface EventStreamOptions {
  readonly remoteAddress: string;
  readonly heartbeatMs?: number;
}

/** What the listener gives a stream: a connection for its transport, and the stream's bytes into it. */
export interface StreamConnection {
  receive(bytes: Buffer): void;
  networkClosedBy(reason: string): void;
}

/** Opens the stream for `request`, or answers it with an error; `register` makes the stream's connection. */
export function openEventStream(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  options: EventStreamOptions,
  register: (transport: Transport) => StreamConnection,
): void {
  const url = new URL(request.url ?? '/', 'http://listener');
  const filters = url.searchParams.getAll('filter');
  if (filters.length === 0) return plain(response, 400, 'give one or more topic filters: /events?filter=a/%23&filter=b/+');
  const invalid = filters.map(checkTopicFilter).find((check) => !check.ok);
  if (invalid && !invalid.ok) return plain(response, 400, `invalid topic filter: ${invalid.reason}`);
  // A browser's EventSource cannot set headers: a JWT may come as ?token=, as on the API Gateway door.
  const token = url.searchParams.get('token');
  const credentials = credentialsOf(token !== null ? `Bearer ${token}` : request.headers.authorization);
  if (credentials === 'malformed') return unauthorized(response);

  const clientId = `sse:${randomBytes(12).toString('base64url')}`;
  // A bearer token travels as the password; mqtt-packet writes no password without a user name,
  // and BrokerSecurity does not use one beside a token.
  const username = credentials.username ?? (credentials.password !== undefined ? '' : undefined);
  const connect: Packet = {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clean: true,
    clientId,
    keepalive: KEEP_ALIVE_SECONDS,
    ...(username !== undefined ? { username } : {}),
    ...(credentials.password !== undefined ? { password: credentials.password } : {}),
  };
  const subscribe: Packet = { cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 0, nl: false, rap: false, rh: 0 })) };
  let opening: Buffer;
  try {
    opening = Buffer.concat([encodePacket(connect, 5), encodePacket(subscribe, 5)]);
  } catch (error) {
    return plain(response, 400, `the request cannot be made into MQTT: ${error instanceof Error ? error.message : String(error)}`);
  }

  const stream = new EventStream(response, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  const connection = register(stream.transport(options.remoteAddress));
  stream.connection = connection;
  response.on('close', () => {
    stream.stop();
    connection.networkClosedBy('event stream closed');
  });
  connection.receive(opening);
}

/** One stream: the MQTT the handler sends its connection, read back into HTTP. */
class EventStream {
  connection: StreamConnection | undefined;
  private readonly framer: MqttFramer;
  private readonly id = randomBytes(6).toString('base64url');
  private events = 0;
  private started = false;
  private ended = false;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The keep-alive the broker holds the connection to, when its CONNACK said (5.0 Server Keep Alive). */
  private keepAliveSeconds = KEEP_ALIVE_SECONDS;

  constructor(
    private readonly response: http.ServerResponse,
    private readonly heartbeatMs: number,
  ) {
    // What the handler sends is well framed (within what the door carries); the framer only splits writes holding several packets.
    this.framer = new MqttFramer(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  }

  transport(remoteAddress: string): Transport {
    return {
      write: (bytes) => this.written(bytes),
      bufferedBytes: () => this.response.writableLength,
      framingBytes: 0,
      close: (lastBytes) => {
        if (lastBytes) this.written(lastBytes);
        this.end(503, 'the broker closed the stream');
      },
      abort: () => this.response.destroy(),
      remoteAddress,
    };
  }

  stop(): void {
    clearInterval(this.heartbeat);
    this.ended = true;
  }

  private written(bytes: Buffer): void {
    if (this.ended) return;
    try {
      for (const frame of this.framer.push(bytes)) this.packet(decodePacket(frame, 5));
    } catch {
      this.end(502, 'the broker sent what the stream cannot read');
    }
  }

  private packet(packet: Packet): void {
    switch (packet.cmd) {
      case 'connack': {
        const code = packet.reasonCode ?? 0;
        if (code === 0) {
          // A broker with a lower MQTT_MAX_KEEPALIVE says so: the pings must come within it.
          this.keepAliveSeconds = packet.properties?.serverKeepAlive ?? KEEP_ALIVE_SECONDS;
          return;
        }
        return this.end(authenticationStatus(code), `connection refused: reason code 0x${code.toString(16)}`);
      }
      case 'suback': {
        const refused = (packet.granted as number[]).find((code) => code >= 0x80);
        if (refused !== undefined) return this.end(refusalStatus(refused), refused === ReasonCode.NotAuthorized ? 'not authorized to subscribe to these filters' : `subscription refused: reason code 0x${refused.toString(16)}`);
        return this.start();
      }
      case 'publish':
        if (!this.started) return; // nothing is sent before the SUBACK
        this.response.write(eventOf(`${this.id}.${++this.events}`, packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)));
        return;
      case 'disconnect':
        return this.end(503, 'the broker closed the stream');
      default:
        return; // PINGRESP and anything else carry nothing for the client
    }
  }

  private start(): void {
    this.started = true;
    this.response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      // The socket goes with the stream: nothing lingers for a next request (nor holds up the listener's stop).
      connection: 'close',
      // The request's own credentials (a header or ?token=) are the authentication, never a cookie.
      'access-control-allow-origin': '*',
    });
    this.response.write(`: subscribed\n\n`);
    // At least twice a keep-alive (the listener closes a connection silent for 1.5 of them),
    // counted from now: the first ping goes at once, as the CONNECT was a while ago.
    const ping = (): void => this.connection?.receive(PINGREQ);
    const every = Math.min(this.heartbeatMs, (this.keepAliveSeconds * 1000) / 2);
    ping();
    this.heartbeat = setInterval(() => {
      this.response.write(': heartbeat\n\n');
      ping();
    }, every);
    this.heartbeat.unref();
  }

  /** Before the stream started: an error status; after: the stream simply ends. */
  private end(status: number, message: string): void {
    if (this.ended) return;
    this.stop();
    if (this.started || this.response.headersSent) this.response.end();
    else if (status === 401) unauthorized(this.response);
    else plain(this.response, status, message);
  }
}

/**
 * One event: `id`, `event` (the topic; a CR or LF in it percent-encoded, as SSE fields are one
 * line), and the payload as `data` lines (a line break splits it into several, which the client
 * joins with LF). A payload that is not UTF-8, holds a CR (SSE would read it as a line break) or
 * begins with the marker is sent as `base64:` and its base64, so the marker is never ambiguous.
 */
export function eventOf(id: string, topic: string, payload: Buffer): string {
  const name = topic.replaceAll('\r', '%0D').replaceAll('\n', '%0A');
  const data = textOf(payload) ?? `${BASE64_MARKER}${payload.toString('base64')}`;
  return `id: ${id}\nevent: ${name}\n${data.split('\n').map((line) => `data: ${line}\n`).join('')}\n`;
}

function textOf(payload: Buffer): string | undefined {
  try {
    const text = strictUtf8.decode(payload);
    return text.includes('\r') || text.startsWith(BASE64_MARKER) ? undefined : text;
  } catch {
    return undefined;
  }
}

function plain(response: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (response.headersSent) return void response.end();
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'access-control-allow-origin': '*', connection: 'close', ...headers }).end(`${message}\n`);
}

/**
 * The challenge names Bearer only: a Basic challenge makes a browser prompt for a password
 * (and a headless one wait for ever) instead of failing the EventSource. Basic credentials are
 * still read when sent.
 */
function unauthorized(response: http.ServerResponse): void {
  plain(response, 401, 'authentication failed', { 'www-authenticate': BEARER_CHALLENGE });
}
