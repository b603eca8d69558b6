/**
 * The HTTP door on this machine (HTTP_PORT): what API Gateway's HTTP API and the listener serve in
 * the cloud, on one port.
 *   POST /topics/{topic}   HTTP publish: the request as API Gateway's HTTP API hands it to the
 *                          http-publish Lambda (payload format 2.0), the same handler, invoked as the harness invokes every function
 *   GET  /events           server-sent events: handed to the listener, as its WebSocket port does in the cloud
 * A body over API Gateway's 10 MB payload limit is refused with 413, as API Gateway refuses it; a
 * path that is not percent-encoded UTF-8 with 400.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { normalizeAddress } from '../shared/listener/connection-caps';
import { EVENTS_PATH } from '../shared/listener/event-stream';
import { close, listen } from '../shared/listener/servers';

/** API Gateway's HTTP API takes request payloads up to 10 MB. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface HttpDoorOptions {
  readonly host: string;
  readonly port: number;
  /** The http-publish function, as the harness invokes it. */
  readonly publish: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyResultV2>;
  /** The listener of the moment (the harness may restart it). */
  readonly events: (request: http.IncomingMessage, response: http.ServerResponse, remoteAddress: string) => void;
}

export class HttpDoor {
  private readonly server: http.Server;

  constructor(private readonly options: HttpDoorOptions) {
    this.server = http.createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://local');
      if (url.pathname === EVENTS_PATH && request.method === 'GET') {
        return this.options.events(request, response, normalizeAddress(request.socket.remoteAddress ?? ''));
      }
      if (url.pathname.startsWith('/topics/')) return void this.publish(request, response);
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: POST /topics/{topic} or GET /events?filter=...\n');
    });
  }

  async start(): Promise<number> {
    return listen(this.server, this.options.port, this.options.host, 'HTTP');
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await close(this.server);
  }

  private async publish(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) return void response.writeHead(413, { 'content-type': 'application/json', connection: 'close' }).end('{"message":"Request Entity Too Large"}');
      chunks.push(chunk);
    }
    const event = eventOf(request, Buffer.concat(chunks));
    if (!event) return void response.writeHead(400, { 'content-type': 'application/json' }).end('{"message":"Bad Request"}');
    try {
      const result = await this.options.publish(event);
      const { statusCode = 200, headers = {}, body = '' } = typeof result === 'string' ? { body: result } : result;
      response.writeHead(statusCode, headers as http.OutgoingHttpHeaders).end(body);
    } catch {
      // API Gateway answers a function that failed with 500 and this body.
      response.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"Internal Server Error"}');
    }
  }
}

/**
 * The request as API Gateway's HTTP API puts it in a payload format 2.0 event: its `rawPath`
 * percent-decoded, as the HTTP API hands it over (undefined when it cannot be decoded).
 */
function eventOf(request: http.IncomingMessage, body: Buffer): APIGatewayProxyEventV2 | undefined {
  const [encodedPath = '/', rawQueryString = ''] = (request.url ?? '/').split(/\?(.*)/s);
  let rawPath: string;
  try {
    rawPath = decodeURIComponent(encodedPath);
  } catch {
    return undefined;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  // Repeated parameters are joined with commas, as API Gateway joins them.
  const query: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(rawQueryString)) query[name] = name in query ? `${query[name]},${value}` : value;
  const now = new Date();
  const proxy = rawPath.slice('/topics/'.length);
  return {
    version: '2.0',
    routeKey: 'POST /topics/{proxy+}',
    rawPath,
    rawQueryString,
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    pathParameters: { proxy },
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0]!,
      http: {
        method: request.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: normalizeAddress(request.socket.remoteAddress ?? ''),
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: 'POST /topics/{proxy+}',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: body.toString('base64') } : {}),
    isBase64Encoded: true,
  };
}
