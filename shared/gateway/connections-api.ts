/**
 * Delivers to either door through the same `@connections` API: API Gateway's management
 * endpoint for browsers, and a listener task's delivery endpoint for devices. On the API
 * Gateway door MQTT travels base64-encoded in text messages, since API Gateway rejects binary
 * frames from clients and the browser adapter speaks the same encoding both ways.
 */
import {
  ApiGatewayManagementApiClient,
  ApiGatewayManagementApiServiceException,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
  type ApiGatewayManagementApiClientConfig,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { forEachBounded } from '../util/concurrency';
import type { ConnectionGateway, ConnectionProbe, DeliveryResult } from '../broker/ports';
import { encodeDeliveryBatch, parseGoneList } from './delivery-batch';
import { listenerEndpointOf } from './connection-id';
import { API_GATEWAY_OUTBOUND_PACKET_BYTES } from './door-limits';
import { encodeTextMessage, groupPackets } from './text-frames';

/** A listener task that does not accept a connection in this time is taken for gone. */
const LISTENER_CONNECT_TIMEOUT_MS = 3_000;

export interface ConnectionsApiOptions {
  /** `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, or the local emulator's. */
  readonly apiGatewayEndpoint?: string;
  /** Region, credentials and the like, shared by every endpoint's client. */
  readonly clientConfig?: Omit<ApiGatewayManagementApiClientConfig, 'endpoint'>;
}

const PARALLEL_POSTS = 32;

export class ConnectionsApi implements ConnectionGateway, ConnectionProbe {
  private readonly clients = new Map<string, ApiGatewayManagementApiClient>();

  constructor(private readonly options: ConnectionsApiOptions) {}

  async send(connectionId: string, data: Buffer): Promise<DeliveryResult> {
    const listener = listenerEndpointOf(connectionId);
    // API Gateway carries at most 128 KB per message: whole packets, several messages if need be.
    const messages = listener ? [data] : groupPackets(data, API_GATEWAY_OUTBOUND_PACKET_BYTES).map(encodeTextMessage);
    try {
      for (const Data of messages) await this.clientFor(connectionId).send(new PostToConnectionCommand({ ConnectionId: connectionId, Data }));
      return 'delivered';
    } catch (error) {
      if (error instanceof GoneException) return 'gone';
      throw error;
    }
  }

  async probe(connectionId: string): Promise<'connected' | 'gone'> {
    try {
      await this.clientFor(connectionId).send(new GetConnectionCommand({ ConnectionId: connectionId }));
      return 'connected';
    } catch (error) {
      if (error instanceof GoneException) return 'gone';
      // No answer at all from a listener task: the task, and every socket it held, is gone.
      if (listenerEndpointOf(connectionId) && !(error instanceof ApiGatewayManagementApiServiceException)) return 'gone';
      throw error;
    }
  }

  async sendMany(deliveries: ReadonlyArray<readonly [string, Buffer]>): Promise<Map<string, DeliveryResult>> {
    const results = new Map<string, DeliveryResult>();
    const byListener = new Map<string, Array<readonly [string, Buffer]>>();
    const apiGateway: Array<readonly [string, Buffer]> = [];
    for (const delivery of deliveries) {
      const endpoint = listenerEndpointOf(delivery[0]);
      if (endpoint === undefined) apiGateway.push(delivery);
      else byListener.set(endpoint, [...(byListener.get(endpoint) ?? []), delivery]);
    }
    // A request that fails leaves its connections out of the results: the caller logs them.
    await Promise.all([
      ...[...byListener].map(async ([endpoint, batch]) => {
        const gone = await this.postBatch(endpoint, batch).catch((error: unknown) => {
          // No task listens there any more: every connection it held is gone.
          if (isConnectionRefused(error)) return new Set(batch.map(([id]) => id));
          return undefined;
        });
        if (gone) for (const [id] of batch) results.set(id, gone.has(id) ? 'gone' : 'delivered');
      }),
      forEachBounded(apiGateway, PARALLEL_POSTS, async ([id, data]) => {
        const result = await this.send(id, data).catch(() => undefined);
        if (result) results.set(id, result);
      }),
    ]);
    return results;
  }

  /** One request to a listener task for all of its connections (its delivery endpoint's batch route). */
  private async postBatch(endpoint: string, batch: ReadonlyArray<readonly [string, Buffer]>): Promise<Set<string>> {
    const response = await fetch(`${endpoint}/@connections`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: encodeDeliveryBatch(batch),
    });
    if (!response.ok) throw new Error(`listener ${endpoint} answered ${response.status} to a delivery batch`);
    return parseGoneList(await response.text());
  }

  async close(connectionId: string): Promise<void> {
    try {
      await this.clientFor(connectionId).send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (!(error instanceof GoneException)) throw error;
    }
  }

  private clientFor(connectionId: string): ApiGatewayManagementApiClient {
    const endpoint = listenerEndpointOf(connectionId) ?? this.options.apiGatewayEndpoint;
    if (!endpoint) throw new Error(`no API Gateway endpoint configured to reach connection ${connectionId}`);
    let client = this.clients.get(endpoint);
    if (!client) {
      const listener = endpoint !== this.options.apiGatewayEndpoint;
      client = new ApiGatewayManagementApiClient({
        ...(listener ? { requestHandler: { connectionTimeout: LISTENER_CONNECT_TIMEOUT_MS } } : {}),
        ...this.options.clientConfig,
        endpoint,
      });
      this.clients.set(endpoint, client);
    }
    return client;
  }
}

function isConnectionRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code === 'ECONNREFUSED';
}
