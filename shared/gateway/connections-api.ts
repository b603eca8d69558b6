/**
 * Delivers to either door through the same `@connections` API: API Gateway's management
 * endpoint for browsers, and a listener task's delivery endpoint for devices. On the API
 * Gateway door MQTT travels base64-encoded in text messages, since API Gateway rejects binary
 * frames from clients and the browser adapter speaks the same encoding both ways. Requests to a
 * listener are signed with the delivery secret (delivery-signature.ts); API Gateway's are signed
 * by the SDK (SigV4), as ever.
 *
 * Retries: API Gateway's client retries throttling (429 LimitExceededException: the account's
 * request rate, shared with every API of the account) and 5xx with exponential backoff and full
 * jitter within CONNECTIONS_RETRY; 410 GoneException is never retried. A listener task's client
 * retries the same within LISTENER_RETRY, whose short total leaves no retry after a connect
 * timeout (a task that vanished). A listener's batch request is not retried: the task answers 500
 * only when a write threw part way, and resending would duplicate what was written. Every call
 * that still fails is logged as CONNECTIONS_CALL_FAILED with the number of connections it
 * carried; the stack counts those lines as a metric and alarms on it.
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
import { BackoffRetryStrategy, type BackoffPolicy } from '../util/backoff-retry';
import type { ConnectionGateway, ConnectionProbe, DeliveryResult, Logger } from '../broker/ports';
import { encodeDeliveryBatches, MAX_DELIVERY_REQUEST_BYTES, parseGoneList } from './delivery-batch';
import { DeliverySigningError, signatureHeaders } from './delivery-signature';
import { listenerEndpointOf, newListenerConnectionId } from './connection-id';
import { API_GATEWAY_OUTBOUND_PACKET_BYTES } from './door-limits';
import { encodeTextMessage, groupPackets } from './text-frames';

/** A listener task that does not accept a connection in this time is taken for gone. */
const LISTENER_CONNECT_TIMEOUT_MS = 3_000;
/**
 * A delivery batch a listener task has not answered in this time is given up (its connections
 * left out of the results, logged by the caller), so a task that hangs holds a handler no longer.
 */
const LISTENER_REQUEST_TIMEOUT_MS = 10_000;

/**
 * API Gateway's @connections calls: up to 10 attempts, waits of up to 0.2, 0.4, 0.8, 1.6, then
 * 2 s, none ending past 6 s after the first attempt (the requests' own time comes on top). A
 * burst over the account's rate is spread over the next seconds instead of lost.
 */
export const CONNECTIONS_RETRY: BackoffPolicy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 2000, maxTotalMs: 6000 };
/** A listener task's: a quick retry of an error answer or a reset, never after a connect timeout. */
export const LISTENER_RETRY: BackoffPolicy = { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 500, maxTotalMs: 1000 };
/** The log message of a call that failed after its retries (its fields: operation, door, connections, error). */
export const CONNECTIONS_CALL_FAILED = '@connections call failed';

export interface ConnectionsApiOptions {
  /** `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, or the local emulator's. */
  readonly apiGatewayEndpoint?: string;
  /** Region, credentials and the like, shared by every endpoint's client. */
  readonly clientConfig?: Omit<ApiGatewayManagementApiClientConfig, 'endpoint'>;
  /**
   * The secret that signs requests to the listener tasks' delivery endpoints (fetched once and
   * kept by whoever provides it). Without it, a delivery to a device fails.
   */
  readonly listenerSecret?: () => Promise<string>;
  /** How long a delivery batch to a listener task may take (LISTENER_REQUEST_TIMEOUT_MS). */
  readonly listenerRequestTimeoutMs?: number;
  /** How API Gateway's client retries (CONNECTIONS_RETRY). */
  readonly retry?: BackoffPolicy;
  /** Where calls that failed after their retries are logged. */
  readonly log?: Logger;
}

const PARALLEL_POSTS = 32;

export class ConnectionsApi implements ConnectionGateway, ConnectionProbe {
  private readonly clients = new Map<string, ApiGatewayManagementApiClient>();

  constructor(private readonly options: ConnectionsApiOptions) {}

  async send(connectionId: string, data: Buffer): Promise<DeliveryResult> {
    const listener = listenerEndpointOf(connectionId);
    // API Gateway carries at most 128 KB per message, a listener 8 MB per request: whole packets,
    // several messages if need be.
    const messages = listener ? groupPackets(data, MAX_DELIVERY_REQUEST_BYTES) : groupPackets(data, API_GATEWAY_OUTBOUND_PACKET_BYTES).map(encodeTextMessage);
    try {
      for (const Data of messages) await this.clientFor(connectionId).send(new PostToConnectionCommand({ ConnectionId: connectionId, Data }));
      return 'delivered';
    } catch (error) {
      if (error instanceof GoneException) return 'gone';
      this.failed('post', connectionId, 1, error);
      throw error;
    }
  }

  async probe(connectionId: string): Promise<'connected' | 'gone'> {
    return (await this.probeActivity(connectionId)).state;
  }

  async probeActivity(connectionId: string): Promise<{ state: 'connected' | 'gone'; lastActiveAt?: number }> {
    const answer = await this.ask(connectionId);
    // No answer at all from a listener task: the task, and every socket it held, is gone.
    if (typeof answer === 'string') return { state: 'gone' };
    return { state: 'connected', ...(answer.lastActiveAt !== undefined ? { lastActiveAt: answer.lastActiveAt } : {}) };
  }

  /**
   * A listener task answers for all its connections: asked after a connection id it never issued,
   * a live task says 410 (as for any connection it does not hold); no answer at all means no task.
   */
  async probeTask(endpoint: string): Promise<'alive' | 'gone'> {
    return (await this.ask(newListenerConnectionId(endpoint))) === 'no answer' ? 'gone' : 'alive';
  }

  /** `GET @connections/{id}`: held, not held (410), or, from a listener task, no answer at all. */
  private async ask(connectionId: string): Promise<{ lastActiveAt?: number } | 'not held' | 'no answer'> {
    try {
      const held = await this.clientFor(connectionId).send(new GetConnectionCommand({ ConnectionId: connectionId }));
      return held.LastActiveAt ? { lastActiveAt: held.LastActiveAt.getTime() } : {};
    } catch (error) {
      if (error instanceof GoneException) return 'not held';
      // Not asked at all: that says nothing about the connection.
      if (error instanceof DeliverySigningError) throw error;
      if (listenerEndpointOf(connectionId) && !(error instanceof ApiGatewayManagementApiServiceException)) return 'no answer';
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
          this.failed('post batch', batch[0]![0], batch.length, error);
          return undefined;
        });
        if (gone) for (const [id] of batch) results.set(id, gone.has(id) ? 'gone' : 'delivered');
      }),
      forEachBounded(apiGateway, PARALLEL_POSTS, async ([id, data]) => {
        // A failure is logged by send.
        const result = await this.send(id, data).catch(() => undefined);
        if (result) results.set(id, result);
      }),
    ]);
    return results;
  }

  /**
   * A listener task's connections through its delivery endpoint's batch route: one request, or
   * several in order when the bytes exceed what one request may carry.
   */
  private async postBatch(endpoint: string, batch: ReadonlyArray<readonly [string, Buffer]>): Promise<Set<string>> {
    const secret = await this.listenerSecretValue();
    const gone = new Set<string>();
    for (const body of encodeDeliveryBatches(batch)) {
      const response = await fetch(`${endpoint}${BATCH_PATH}`, {
        signal: AbortSignal.timeout(this.options.listenerRequestTimeoutMs ?? LISTENER_REQUEST_TIMEOUT_MS),
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', ...signatureHeaders(secret, 'POST', BATCH_PATH, body, Date.now()) },
        body,
      });
      if (!response.ok) throw new Error(`listener ${endpoint} answered ${response.status} to a delivery batch`);
      for (const id of parseGoneList(await response.text())) gone.add(id);
    }
    return gone;
  }

  private async listenerSecretValue(): Promise<string> {
    if (!this.options.listenerSecret) throw new DeliverySigningError('no delivery secret configured: deliveries to listener connections cannot be signed');
    try {
      return await this.options.listenerSecret();
    } catch (error) {
      throw new DeliverySigningError(`the delivery secret is unavailable: ${String(error)}`);
    }
  }

  async close(connectionId: string): Promise<void> {
    try {
      await this.clientFor(connectionId).send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (error instanceof GoneException) return;
      this.failed('delete', connectionId, 1, error);
      throw error;
    }
  }

  private failed(operation: string, connectionId: string, connections: number, error: unknown): void {
    const door = listenerEndpointOf(connectionId) === undefined ? 'apigw' : 'listener';
    const described = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.options.log?.warn(CONNECTIONS_CALL_FAILED, { operation, door, connections, connectionId, error: described });
  }

  private clientFor(connectionId: string): ApiGatewayManagementApiClient {
    const endpoint = listenerEndpointOf(connectionId) ?? this.options.apiGatewayEndpoint;
    if (!endpoint) throw new Error(`no API Gateway endpoint configured to reach connection ${connectionId}`);
    let client = this.clients.get(endpoint);
    if (!client) {
      const listener = endpoint !== this.options.apiGatewayEndpoint;
      const retry = listener ? LISTENER_RETRY : (this.options.retry ?? CONNECTIONS_RETRY);
      client = new ApiGatewayManagementApiClient({
        ...(listener ? { requestHandler: { connectionTimeout: LISTENER_CONNECT_TIMEOUT_MS } } : {}),
        maxAttempts: retry.maxAttempts,
        retryStrategy: new BackoffRetryStrategy(retry),
        ...this.options.clientConfig,
        endpoint,
      });
      if (listener) this.signListenerRequests(client);
      this.clients.set(endpoint, client);
    }
    return client;
  }

  /** Signs each attempt (after the SDK's retry step, so a retried request gets a fresh timestamp). */
  private signListenerRequests(client: ApiGatewayManagementApiClient): void {
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { method: string; path: string; body?: unknown; headers: Record<string, string> };
        const secret = await this.listenerSecretValue();
        Object.assign(request.headers, signatureHeaders(secret, request.method, request.path, bodyBytes(request.body), Date.now()));
        return next(args);
      },
      { step: 'finalizeRequest', name: 'listenerDeliverySignature' },
    );
  }
}

const BATCH_PATH = '/@connections';

function bodyBytes(body: unknown): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return body;
  throw new DeliverySigningError('a request body that cannot be signed');
}

function isConnectionRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code === 'ECONNREFUSED';
}
