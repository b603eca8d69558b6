/**
 * The listener's delivery endpoint: API Gateway's `@connections` API on the listener, so the
 * one gateway client reaches devices and browsers alike.
 *   POST   /@connections/{id}  body = bytes to write
 *   GET    /@connections/{id}  -> { ConnectedAt, Identity: { SourceIp }, LastActiveAt }
 *   DELETE /@connections/{id}  closes the connection
 * An unknown id answers 410 GoneException, as API Gateway does, and so does a POST to a
 * connection that is closed or closes on it (its client stopped reading). One addition of our own:
 *   POST   /@connections       bytes for many connections (shared/gateway/delivery-batch.ts),
 *                              answered with the ids that are gone
 *
 * Every request must be signed with the delivery secret (shared/gateway/delivery-signature.ts),
 * else 403; a body over MAX_DELIVERY_REQUEST_BYTES gets 413, a path that does not decode 400.
 * No request, however malformed, reaches further than its own answer.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { decodeDeliveryBatch, MAX_DELIVERY_REQUEST_BYTES } from '../gateway/delivery-batch';
import { beginSignatureCheck, MIN_DELIVERY_SECRET_LENGTH, type SignatureCheck } from '../gateway/delivery-signature';
import type { ClientConnection } from './client-connection';

const BATCH_PATH = '/@connections';

const CONNECTION_PATH = /^\/@connections\/([^/]+)$/;

/** A request (headers and body) that takes longer than this is cut off. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface DeliveryEndpointOptions {
  /** The secret requests are signed with; at least MIN_DELIVERY_SECRET_LENGTH characters. */
  readonly secret: string;
  readonly maxBodyBytes?: number;
  readonly now?: () => number;
}

type Lookup = (connectionId: string) => ClientConnection | undefined;

type Route = { kind: 'batch' } | { kind: 'connection'; connectionId: string };

export function createDeliveryServer(lookup: Lookup, options: DeliveryEndpointOptions): http.Server {
  if (options.secret.length < MIN_DELIVERY_SECRET_LENGTH) {
    throw new Error(`the delivery endpoint's secret must be at least ${MIN_DELIVERY_SECRET_LENGTH} characters`);
  }
  const maxBodyBytes = options.maxBodyBytes ?? MAX_DELIVERY_REQUEST_BYTES;
  const now = options.now ?? Date.now;
  const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS }, (request, response) => {
    try {
      serve(request, response);
    } catch {
      // Nothing a request carries may end the process that holds every device's socket.
      if (!response.headersSent) answer(response, 500, { message: 'Internal Server Error' });
    }
  });
  // A request Node cannot parse: answer and drop the socket (as Node's default does, made
  // explicit so that no parser error can go unanswered or unhandled).
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return server;

  function serve(request: http.IncomingMessage, response: http.ServerResponse): void {
    const target = request.url ?? '';
    const route = routeOf(target.split('?')[0]!, request.method);
    if (typeof route === 'number') return answer(response, route, { message: http.STATUS_CODES[route] });
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) return tooLarge(request, response);
    const check = beginSignatureCheck(options.secret, request.method ?? '', target, request.headers, now());
    if (!check) return forbidden(request, response);
    readBody(request, response, check, (body) => {
      if (route.kind === 'batch') return deliverBatch(body, response, lookup);
      return actOnConnection(request.method!, lookup(route.connectionId), body, response);
    });
  }

  function readBody(request: http.IncomingMessage, response: http.ServerResponse, check: SignatureCheck, then: (body: Buffer) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    request.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        refused = true;
        return tooLarge(request, response);
      }
      check.update(chunk);
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (refused) return;
      if (!check.valid()) return forbidden(request, response);
      try {
        then(Buffer.concat(chunks));
      } catch {
        if (!response.headersSent) answer(response, 500, { message: 'Internal Server Error' });
      }
    });
    request.on('error', () => request.destroy());
  }
}

/** The route of a path, or the status to answer: 404 (no such route), 405 (method), 400 (an id that does not decode). */
function routeOf(path: string, method: string | undefined): Route | number {
  if (path === BATCH_PATH) return method === 'POST' ? { kind: 'batch' } : 405;
  const match = CONNECTION_PATH.exec(path);
  if (!match) return 404;
  if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') return 405;
  try {
    return { kind: 'connection', connectionId: decodeURIComponent(match[1]!) };
  } catch {
    return 400; // `%` not followed by two hex digits, or bytes that are not UTF-8
  }
}

function actOnConnection(method: string, connection: ClientConnection | undefined, body: Buffer, response: http.ServerResponse): void {
  if (!connection) return answer(response, 410, { message: 'GoneException' }, 'GoneException');
  switch (method) {
    case 'POST':
      return connection.deliver(body) ? answer(response, 200) : answer(response, 410, { message: 'GoneException' }, 'GoneException');
    case 'GET':
      return answer(response, 200, {
        ConnectedAt: connection.connectedAt.toISOString(),
        Identity: { SourceIp: connection.remoteAddress },
        LastActiveAt: connection.lastActiveAt.toISOString(),
      });
    default:
      connection.serverClose('closed through @connections');
      return answer(response, 204);
  }
}

function deliverBatch(body: Buffer, response: http.ServerResponse, lookup: Lookup): void {
  let deliveries: Array<[string, Buffer]>;
  try {
    deliveries = decodeDeliveryBatch(body);
  } catch (error) {
    return answer(response, 400, { message: String(error) });
  }
  const gone: string[] = [];
  for (const [connectionId, data] of deliveries) {
    if (!lookup(connectionId)?.deliver(data)) gone.push(connectionId);
  }
  answer(response, 200, { gone });
}

/** Answer and close: the rest of the body is not read. */
function tooLarge(request: http.IncomingMessage, response: http.ServerResponse): void {
  answerAndClose(request, response, 413, 'PayloadTooLargeException');
}

function forbidden(request: http.IncomingMessage, response: http.ServerResponse): void {
  answerAndClose(request, response, 403, 'ForbiddenException');
}

function answerAndClose(request: http.IncomingMessage, response: http.ServerResponse, status: number, errorType: string): void {
  response.setHeader('connection', 'close');
  answer(response, status, { message: errorType }, errorType);
  // Stop reading: whatever else the client sends is not buffered.
  response.once('finish', () => request.socket.destroySoon());
}


function answer(response: http.ServerResponse, status: number, body?: object, errorType?: string): void {
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  response.writeHead(status, headers).end(body ? JSON.stringify(body) : undefined);
}
