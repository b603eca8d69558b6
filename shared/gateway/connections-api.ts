/**
 * Delivers to either door through the same `@connections` API: API Gateway's management
 * endpoint for browsers, and a listener task's delivery endpoint for devices. On the API
 * Gateway door MQTT travels base64-encoded in text messages, since API Gateway rejects binary
 * frames from clients and the browser adapter speaks the same encoding both ways.
 */
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GoneException,
  PostToConnectionCommand,
  type ApiGatewayManagementApiClientConfig,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { ConnectionGateway, DeliveryResult } from '../broker/ports';
import { listenerEndpointOf } from './connection-id';
import { encodeTextMessage } from './text-frames';

export interface ConnectionsApiOptions {
  /** `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, or the local emulator's. */
  readonly apiGatewayEndpoint?: string;
  /** Region, credentials and the like, shared by every endpoint's client. */
  readonly clientConfig?: Omit<ApiGatewayManagementApiClientConfig, 'endpoint'>;
}

export class ConnectionsApi implements ConnectionGateway {
  private readonly clients = new Map<string, ApiGatewayManagementApiClient>();

  constructor(private readonly options: ConnectionsApiOptions) {}

  async send(connectionId: string, data: Buffer): Promise<DeliveryResult> {
    const listener = listenerEndpointOf(connectionId);
    const Data = listener ? data : encodeTextMessage(data);
    try {
      await this.clientFor(connectionId).send(new PostToConnectionCommand({ ConnectionId: connectionId, Data }));
      return 'delivered';
    } catch (error) {
      if (error instanceof GoneException) return 'gone';
      throw error;
    }
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
      client = new ApiGatewayManagementApiClient({ ...this.options.clientConfig, endpoint });
      this.clients.set(endpoint, client);
    }
    return client;
  }
}
