/**
 * An emulation of an API Gateway WebSocket API, faithful to what breaks MQTT on AWS:
 * - `$connect` decides the handshake: a non-2xx answer refuses it with that HTTP status, and a
 *   subprotocol is agreed only when `$connect` returns Sec-WebSocket-Protocol;
 * - a binary frame from a client closes the connection with 1003; a frame over 32 KB or a
 *   message over 128 KB with 1009 (a browser sends each message as one frame, so 32 KB is what
 *   a browser can send at once);
 * - every message is its own `$default` invocation, started at once: two messages of one
 *   connection may be handled at the same time, as on AWS; with `jitterMs` each invocation
 *   starts after a random delay, so messages overtake each other (the switch for ordering tests);
 * - `@connections/{id}` POST/GET/DELETE on the same port, 410 GoneException for a gone id, 413
 *   PayloadTooLargeException for a message over 128 KB; a message over 32 KB goes out in
 *   32 KB frames; over the account's request rate (`connectionsRequestsPerSecond`, API Gateway's
 *   10,000 a second by default, local/aws-limits.ts), 429 LimitExceededException;
 * - a `$default` invocation that fails sends the client API Gateway's JSON error message;
 * - `$disconnect` is invoked best-effort with the close status (`dropDisconnect` never invokes
 *   it, as when AWS loses one); idle and maximum lifetimes.
 * Events carry the fields AWS sends, serialized and parsed on the way in and out.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { APIGatewayProxyResultV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../shared/broker/ports';
import { API_GATEWAY_FRAME_BYTES, API_GATEWAY_MESSAGE_BYTES } from '../shared/gateway/door-limits';
import { listen } from '../shared/listener/servers';
import { API_GATEWAY_ACCOUNT_REQUESTS_PER_SECOND } from './aws-limits';
import { FrameSizeGuard } from './frame-size-guard';
import type { LimitMeter } from './meters';

/** A route's handler; each declares the AWS event type it expects, which the emulator builds. */
export type RouteHandler = (event: never) => Promise<APIGatewayProxyResultV2 | void>;

export interface EmulatorRoutes {
  readonly $connect: RouteHandler;
  readonly $default: RouteHandler;
  readonly $disconnect: RouteHandler;
}

export interface EmulatorOptions {
  readonly host: string;
  readonly port: number;
  readonly stage?: string;
  readonly log: Logger;
  readonly idleTimeoutMs?: number;
  readonly maxConnectionMs?: number;
  /** Start each `$default` invocation after a random delay of up to this many ms (0: at once). */
  readonly jitterMs?: number;
  /** The random source for the jitter, in [0, 1); tests pass their own to make it deterministic. */
  readonly random?: () => number;
  /** Never invoke `$disconnect`, as when API Gateway's best effort fails. */
  readonly dropDisconnect?: boolean;
  /** `@connections` requests a second before 429 LimitExceededException (the account's rate). */
  readonly connectionsRequestsPerSecond?: number;
  /** Where the requests refused over that rate are counted. */
  readonly limitMeter?: LimitMeter;
}

interface EmulatedConnection {
  readonly ws: WebSocket;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly userAgent: string;
  lastActiveAt: number;
  /** Set once a close started: messages still parsed after it are not invoked. */
  closing: boolean;
  idleTimer?: NodeJS.Timeout;
  lifetimeTimer?: NodeJS.Timeout;
}

const MAX_FRAME_BYTES = API_GATEWAY_FRAME_BYTES;
const MAX_MESSAGE_BYTES = API_GATEWAY_MESSAGE_BYTES;
const CONNECTIONS_PATH = /\/@connections\/([^/?]+)$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export class ApiGatewayEmulator {
  routes?: EmulatorRoutes;
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, handleProtocols: (_offered, request) => this.agreed.get(request) ?? false });
  private readonly agreed = new WeakMap<http.IncomingMessage, string>();
  private readonly connections = new Map<string, EmulatedConnection>();
  private readonly stage: string;
  private port = 0;
  /** When the `@connections` requests of the last second were admitted. */
  private readonly admitted: number[] = [];
  private admittedHead = 0;
  /** `@connections` requests answered so far, by method (GET is the sweeper's probe). */
  readonly connectionsRequests: Record<string, number> = {};

  constructor(private readonly options: EmulatorOptions) {
    this.stage = options.stage ?? 'local';
    this.server = http.createServer((request, response) => this.connectionsApi(request, response));
    this.server.on('upgrade', (request, socket, head) => void this.upgrade(request, socket, head));
  }

  async start(): Promise<{ url: string; managementEndpoint: string }> {
    this.port = await listen(this.server, this.options.port, this.options.host, 'API Gateway emulator');
    return { url: `ws://${this.options.host}:${this.port}`, managementEndpoint: `http://${this.options.host}:${this.port}/${this.stage}` };
  }

  async stop(): Promise<void> {
    for (const connection of this.connections.values()) connection.ws.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async upgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const connectionId = randomBytes(11).toString('base64');
    const connectedAt = Date.now();
    const sourceIp = request.socket.remoteAddress ?? '';
    const userAgent = request.headers['user-agent'] ?? '';
    const headers = flatHeaders(request);
    let result: APIGatewayProxyStructuredResultV2;
    try {
      result = normalize(
        await this.invoke(
          '$connect',
          { connectionId, connectedAt, sourceIp, userAgent },
          { headers, multiValueHeaders: multiValue(headers), isBase64Encoded: false, ...queryOf(request) },
        ),
      );
    } catch (error) {
      this.options.log.error('$connect failed', { connectionId, error: String(error) });
      result = { statusCode: 500 };
    }
    const status = result.statusCode ?? 200;
    if (status < 200 || status > 299) {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const protocol = Object.entries(result.headers ?? {}).find(([name]) => name.toLowerCase() === 'sec-websocket-protocol')?.[1];
    if (protocol !== undefined) this.agreed.set(request, String(protocol));
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, socket, { connectionId, connectedAt, sourceIp, userAgent }));
  }

  private accept(ws: WebSocket, socket: Duplex, who: Who): void {
    const { connectionId } = who;
    const connection: EmulatedConnection = { ws, connectedAt: who.connectedAt, sourceIp: who.sourceIp, userAgent: who.userAgent, lastActiveAt: who.connectedAt, closing: false };
    this.connections.set(connectionId, connection);
    this.touch(connectionId, connection);
    const closeWith = (code: number, reason: string): void => {
      connection.closing = true;
      ws.close(code, reason);
    };
    // Before ws reads them, so an oversized frame is refused even when it arrived whole.
    const guard = new FrameSizeGuard(MAX_FRAME_BYTES, () => closeWith(1009, 'Message too big'));
    socket.prependListener('data', (chunk: Buffer) => {
      if (!connection.closing) guard.push(chunk);
    });
    connection.lifetimeTimer = setTimeout(() => closeWith(1001, 'Going away'), this.options.maxConnectionMs ?? 2 * 60 * 60 * 1000);
    ws.on('message', (data, isBinary) => {
      if (connection.closing) return;
      // API Gateway accepts text frames only from clients; a binary frame closes with 1003.
      if (isBinary) return closeWith(1003, 'Unsupported data');
      this.touch(connectionId, connection);
      const body = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
      void this.invokeDefault(who, body);
    });
    ws.on('close', (code, reason) => {
      this.connections.delete(connectionId);
      clearTimeout(connection.idleTimer);
      clearTimeout(connection.lifetimeTimer);
      if (this.options.dropDisconnect) return;
      // A close frame without a status reaches $disconnect as 1005, as on AWS.
      this.invoke('$disconnect', who, {
        headers: { Host: this.domainName(), 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' },
        multiValueHeaders: multiValue({ Host: this.domainName(), 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' }),
        isBase64Encoded: false,
      }, { disconnectStatusCode: code, disconnectReason: reason.toString() || closeReason(code) }).catch((error) =>
        this.options.log.warn('$disconnect failed', { connectionId, error: String(error) }),
      );
    });
    ws.on('error', () => undefined);
  }

  private async invokeDefault(who: Who, body: string): Promise<void> {
    const jitterMs = this.options.jitterMs ?? 0;
    if (jitterMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.floor((this.options.random ?? Math.random)() * jitterMs)));
    try {
      await this.invoke('$default', who, { body, isBase64Encoded: false });
    } catch (error) {
      this.options.log.error('$default failed', { connectionId: who.connectionId, error: String(error) });
      // What API Gateway tells the client when the integration fails.
      const ws = this.connections.get(who.connectionId)?.ws;
      ws?.send(JSON.stringify({ message: 'Internal server error', connectionId: who.connectionId, requestId: randomUUID() }));
    }
  }

  private touch(connectionId: string, connection: EmulatedConnection): void {
    connection.lastActiveAt = Date.now();
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => {
      this.options.log.info('idle timeout', { connectionId });
      connection.closing = true;
      connection.ws.close(1001, 'Going away');
    }, this.options.idleTimeoutMs ?? 10 * 60 * 1000);
  }

  private domainName(): string {
    return `${this.options.host}:${this.port}`;
  }

  /** The event as AWS shapes it for each route (see the field list in docs/design.md). */
  private async invoke(
    routeKey: keyof EmulatorRoutes,
    who: Who,
    top: Record<string, unknown>,
    disconnect?: { disconnectStatusCode: number; disconnectReason: string },
  ): Promise<APIGatewayProxyResultV2 | void> {
    const routes = this.routes;
    if (!routes) throw new Error('emulator has no routes');
    const now = Date.now();
    const eventType = routeKey === '$connect' ? 'CONNECT' : routeKey === '$disconnect' ? 'DISCONNECT' : 'MESSAGE';
    const event = {
      ...top,
      requestContext: {
        routeKey,
        // MESSAGE events carry a message id; CONNECT and DISCONNECT carry it as null, and the
        // disconnect fields, null on CONNECT.
        ...(eventType === 'MESSAGE'
          ? { messageId: randomBytes(8).toString('base64').slice(0, 12) }
          : { messageId: null, disconnectStatusCode: disconnect?.disconnectStatusCode ?? null, disconnectReason: disconnect?.disconnectReason ?? null }),
        eventType,
        extendedRequestId: randomBytes(8).toString('base64').slice(0, 12),
        requestTime: requestTime(now),
        messageDirection: 'IN',
        stage: this.stage,
        connectedAt: who.connectedAt,
        requestTimeEpoch: now,
        identity: { sourceIp: who.sourceIp, userAgent: who.userAgent },
        requestId: randomUUID(),
        domainName: this.domainName(),
        connectionId: who.connectionId,
        apiId: 'local',
      },
    };
    // Serialized and parsed, as it would cross the wire to Lambda and back.
    const result = await routes[routeKey](JSON.parse(JSON.stringify(event)) as never);
    return result === undefined ? undefined : JSON.parse(JSON.stringify(result));
  }

  private connectionsApi(request: http.IncomingMessage, response: http.ServerResponse): void {
    const match = CONNECTIONS_PATH.exec((request.url ?? '').split('?')[0]!);
    if (!match) return void response.writeHead(404).end();
    const connectionId = decodeURIComponent(match[1]!);
    const method = request.method ?? '';
    this.connectionsRequests[method] = (this.connectionsRequests[method] ?? 0) + 1;
    if (!this.admit()) {
      this.options.limitMeter?.count('apigw.throttled');
      request.resume();
      return awsError(response, 429, 'LimitExceededException', 'Too Many Requests');
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const connection = this.connections.get(connectionId);
      if (!connection) return awsError(response, 410, 'GoneException');
      switch (request.method) {
        case 'POST': {
          const data = Buffer.concat(chunks);
          if (data.length > MAX_MESSAGE_BYTES) return awsError(response, 413, 'PayloadTooLargeException', 'Message too long');
          this.touch(connectionId, connection);
          sendInFrames(connection.ws, data);
          return void response.writeHead(200).end();
        }
        case 'GET':
          response.writeHead(200, { 'content-type': 'application/json' });
          // The service's wire names (restJson: camelCase), as the SDK reads them.
          return void response.end(
            JSON.stringify({
              connectedAt: new Date(connection.connectedAt).toISOString(),
              identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
              lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
            }),
          );
        case 'DELETE':
          connection.closing = true;
          connection.ws.close(1000);
          return void response.writeHead(204).end();
        default:
          return void response.writeHead(405).end();
      }
    });
  }

  /** The account's request rate over a sliding second: whether one more request is admitted now. */
  private admit(): boolean {
    const now = Date.now();
    while (this.admittedHead < this.admitted.length && this.admitted[this.admittedHead]! <= now - 1000) this.admittedHead++;
    if (this.admittedHead > 1024) {
      this.admitted.splice(0, this.admittedHead);
      this.admittedHead = 0;
    }
    if (this.admitted.length - this.admittedHead >= (this.options.connectionsRequestsPerSecond ?? API_GATEWAY_ACCOUNT_REQUESTS_PER_SECOND)) return false;
    this.admitted.push(now);
    return true;
  }
}

interface Who {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly userAgent: string;
}

/** A message over the frame limit goes out as a text frame and continuation frames of 32 KB. */
function sendInFrames(ws: WebSocket, data: Buffer): void {
  if (data.length <= MAX_FRAME_BYTES) return ws.send(data, { binary: false });
  for (let offset = 0; offset < data.length; offset += MAX_FRAME_BYTES) {
    ws.send(data.subarray(offset, offset + MAX_FRAME_BYTES), { binary: false, fin: offset + MAX_FRAME_BYTES >= data.length });
  }
}

function awsError(response: http.ServerResponse, status: number, errorType: string, message: string | null = null): void {
  response.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': errorType });
  response.end(JSON.stringify({ message }));
}

function normalize(result: APIGatewayProxyResultV2 | void): APIGatewayProxyStructuredResultV2 {
  if (result === undefined || typeof result !== 'object') return { statusCode: 200 };
  return result as APIGatewayProxyStructuredResultV2;
}

/** `$connect` carries the query string as AWS sends it: absent when there is none. */
function queryOf(request: http.IncomingMessage): { queryStringParameters?: Record<string, string> } {
  const params = new URL(request.url ?? '/', 'http://localhost').searchParams;
  return params.size > 0 ? { queryStringParameters: Object.fromEntries(params) } : {};
}

function flatHeaders(request: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name.replace(/(^|-)[a-z]/g, (s) => s.toUpperCase())] = Array.isArray(value) ? value.join(',') : value;
  }
  return headers;
}

function multiValue(headers: Record<string, string>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]]));
}

/** `13/Dec/2020:10:17:47 +0000`, the format of requestContext.requestTime. */
function requestTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

function closeReason(code: number): string {
  switch (code) {
    case 1000:
      return 'Connection Closed Normally';
    case 1001:
      return 'Going away';
    case 1005:
      return 'Client-side close frame status not set';
    case 1006:
      return 'Connection closed abnormally';
    default:
      return '';
  }
}
