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
 */
import http from 'node:http';
import { decodeDeliveryBatch } from '../gateway/delivery-batch';
import type { ClientConnection } from './client-connection';

const BATCH_PATH = '/@connections';

const CONNECTIONS_PATH = /\/@connections\/([^/?]+)$/;

export function createDeliveryServer(lookup: (connectionId: string) => ClientConnection | undefined): http.Server {
  return http.createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]!;
    if (path === BATCH_PATH && request.method === 'POST') return deliverBatch(request, response, lookup);
    const match = CONNECTIONS_PATH.exec(path);
    if (!match) return answer(response, 404, { message: 'Not Found' });
    const connectionId = decodeURIComponent(match[1]!);
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const connection = lookup(connectionId);
      if (!connection) return gone(response);
      switch (request.method) {
        case 'POST':
          return connection.deliver(Buffer.concat(chunks)) ? answer(response, 200) : gone(response);
        case 'GET':
          return answer(response, 200, {
            ConnectedAt: connection.connectedAt.toISOString(),
            Identity: { SourceIp: connection.remoteAddress },
            LastActiveAt: connection.lastActiveAt.toISOString(),
          });
        case 'DELETE':
          connection.serverClose('closed through @connections');
          return answer(response, 204);
        default:
          return answer(response, 405, { message: 'Method Not Allowed' });
      }
    });
  });
}

function deliverBatch(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  lookup: (connectionId: string) => ClientConnection | undefined,
): void {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    let deliveries: Array<[string, Buffer]>;
    try {
      deliveries = decodeDeliveryBatch(Buffer.concat(chunks));
    } catch (error) {
      return answer(response, 400, { message: String(error) });
    }
    const gone: string[] = [];
    for (const [connectionId, data] of deliveries) {
      if (!lookup(connectionId)?.deliver(data)) gone.push(connectionId);
    }
    answer(response, 200, { gone });
  });
}

function gone(response: http.ServerResponse): void {
  answer(response, 410, { message: 'GoneException' }, 'GoneException');
}

function answer(response: http.ServerResponse, status: number, body?: object, errorType?: string): void {
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  response.writeHead(status, headers).end(body ? JSON.stringify(body) : undefined);
}
