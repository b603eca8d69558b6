/**
 * An emulation of an API Gateway WebSocket API, faithful to what breaks MQTT on AWS:
 * - `$connect` decides the handshake: a non-2xx answer refuses it with that HTTP status, and a
 *   subprotocol is agreed only when `$connect` returns Sec-WebSocket-Protocol;
 * - a binary frame from a client closes the connection with 1003; a message over 128 KB with 1009;
 * - every message is its own `$default` invocation, started at once: two messages of one
 *   connection may be handled at the same time, as on AWS;
 * - `@connections/{id}` POST/GET/DELETE on the same port, 410 GoneException for a gone id;
 * - `$disconnect` is invoked best-effort with the close status; idle and maximum lifetimes.
 * Events carry the fields AWS sends, serialized and parsed on the way in and out.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { APIGatewayProxyResultV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../shared/broker/ports';
import { listen } from '../shared/listener/listener';

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
}

interface EmulatedConnection {
  readonly ws: WebSocket;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly userAgent: string;
  lastActiveAt: number;
  idleTimer?: NodeJS.Timeout;
  lifetimeTimer?: NodeJS.Timeout;
}

const MAX_MESSAGE_BYTES = 128 * 1024;
const CONNECTIONS_PATH = /\/@connections\/([^/?]+)$/;

export class ApiGatewayEmulator {
  routes?: EmulatorRoutes;
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, handleProtocols: (_offered, request) => this.agreed.get(request) ?? false });
  private readonly agreed = new WeakMap<http.IncomingMessage, string>();
  private readonly connections = new Map<string, EmulatedConnection>();
  private readonly stage: string;
  private port = 0;

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
    let result: APIGatewayProxyStructuredResultV2;
    try {
      result = normalize(await this.invoke('$connect', connectionId, connectedAt, sourceIp, userAgent, { headers: flatHeaders(request), ...queryOf(request) }));
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
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, connectionId, connectedAt, sourceIp, userAgent));
  }

  private accept(ws: WebSocket, connectionId: string, connectedAt: number, sourceIp: string, userAgent: string): void {
    const connection: EmulatedConnection = { ws, connectedAt, sourceIp, userAgent, lastActiveAt: connectedAt };
    this.connections.set(connectionId, connection);
    this.touch(connectionId, connection);
    connection.lifetimeTimer = setTimeout(() => ws.close(1001, 'Going away'), this.options.maxConnectionMs ?? 2 * 60 * 60 * 1000);
    ws.on('message', (data, isBinary) => {
      // API Gateway accepts text frames only from clients; a binary frame closes with 1003.
      if (isBinary) return ws.close(1003, 'Unsupported data');
      this.touch(connectionId, connection);
      const body = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
      this.invoke('$default', connectionId, connectedAt, sourceIp, userAgent, { body, isBase64Encoded: false }).catch((error) =>
        this.options.log.error('$default failed', { connectionId, error: String(error) }),
      );
    });
    ws.on('close', (code, reason) => {
      this.connections.delete(connectionId);
      clearTimeout(connection.idleTimer);
      clearTimeout(connection.lifetimeTimer);
      this.invoke('$disconnect', connectionId, connectedAt, sourceIp, userAgent, {
        disconnectStatusCode: code,
        disconnectReason: reason.toString(),
      }).catch((error) => this.options.log.warn('$disconnect failed', { connectionId, error: String(error) }));
    });
    ws.on('error', () => undefined);
  }

  private touch(connectionId: string, connection: EmulatedConnection): void {
    connection.lastActiveAt = Date.now();
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => {
      this.options.log.info('idle timeout', { connectionId });
      connection.ws.close(1001, 'Going away');
    }, this.options.idleTimeoutMs ?? 10 * 60 * 1000);
  }

  private async invoke(
    routeKey: keyof EmulatorRoutes,
    connectionId: string,
    connectedAt: number,
    sourceIp: string,
    userAgent: string,
    extra: Record<string, unknown>,
  ): Promise<APIGatewayProxyResultV2 | void> {
    const routes = this.routes;
    if (!routes) throw new Error('emulator has no routes');
    const { disconnectStatusCode, disconnectReason, headers, ...rest } = extra;
    const now = Date.now();
    const event = {
      ...rest,
      ...(headers ? { headers } : {}),
      requestContext: {
        routeKey,
        eventType: routeKey === '$connect' ? 'CONNECT' : routeKey === '$disconnect' ? 'DISCONNECT' : 'MESSAGE',
        ...(routeKey === '$default' ? { messageId: randomBytes(8).toString('base64'), messageDirection: 'IN' } : { messageDirection: 'IN' }),
        ...(disconnectStatusCode !== undefined ? { disconnectStatusCode, disconnectReason } : {}),
        extendedRequestId: randomUUID(),
        requestTime: new Date(now).toUTCString(),
        requestTimeEpoch: now,
        stage: this.stage,
        connectedAt,
        identity: { sourceIp, userAgent },
        requestId: randomUUID(),
        domainName: `${this.options.host}:${this.port}`,
        connectionId,
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
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const connection = this.connections.get(connectionId);
      if (!connection) {
        response.writeHead(410, { 'content-type': 'application/json', 'x-amzn-errortype': 'GoneException' });
        return void response.end(JSON.stringify({ message: null }));
      }
      switch (request.method) {
        case 'POST':
          this.touch(connectionId, connection);
          connection.ws.send(Buffer.concat(chunks), { binary: false });
          return void response.writeHead(200).end();
        case 'GET':
          response.writeHead(200, { 'content-type': 'application/json' });
          return void response.end(
            JSON.stringify({
              ConnectedAt: new Date(connection.connectedAt).toISOString(),
              Identity: { SourceIp: connection.sourceIp, UserAgent: connection.userAgent },
              LastActiveAt: new Date(connection.lastActiveAt).toISOString(),
            }),
          );
        case 'DELETE':
          connection.ws.close(1000);
          return void response.writeHead(204).end();
        default:
          return void response.writeHead(405).end();
      }
    });
  }
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
