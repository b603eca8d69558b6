/**
 * The entry points' logic, as factories over the broker's dependencies: the deployable files
 * (packets.ts, ws-*.ts) build the dependencies from their environment once, at module scope;
 * the local harness builds its own and calls the same handlers with the same JSON events.
 */
import type {
  APIGatewayProxyResultV2,
  APIGatewayProxyWebsocketEventV2,
} from 'aws-lambda';
import type { BrokerDeps } from '../shared/broker/context';
import { handleConnectionClosed } from '../shared/broker/connection-closed';
import { handlePackets } from '../shared/broker/dispatch';
import type { ListenerEvent } from '../shared/listener/events';
import { decodeTextMessage } from '../shared/gateway/text-frames';

/** The listener's batches: packets of one connection in order, or its close. */
export function createPacketsHandler(deps: BrokerDeps) {
  return async (event: ListenerEvent): Promise<void> => {
    switch (event.type) {
      case 'packets':
        return handlePackets(deps, event.connectionId, event.packets.map((p) => Buffer.from(p, 'base64')));
      case 'closed':
        return handleConnectionClosed(deps, event.connectionId);
    }
  };
}

/** The WebSocket `$connect` event as API Gateway sends it (headers are on the event, not in the V2 type). */
export type WebSocketConnectEvent = APIGatewayProxyWebsocketEventV2 & {
  headers?: Record<string, string | undefined>;
};

const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];

/**
 * `$connect`: agree the MQTT subprotocol. API Gateway does not echo Sec-WebSocket-Protocol by
 * itself, and a browser drops a handshake that offered one and got none back.
 */
export function createWsConnectHandler() {
  return async (event: WebSocketConnectEvent): Promise<APIGatewayProxyResultV2> => {
    const offered = headerValue(event.headers, 'sec-websocket-protocol')
      ?.split(',')
      .map((p) => p.trim());
    const chosen = offered?.find((p) => SUBPROTOCOLS.includes(p));
    if (offered && !chosen) return { statusCode: 400, body: 'MQTT needs the "mqtt" WebSocket subprotocol' };
    return { statusCode: 200, ...(chosen ? { headers: { 'Sec-WebSocket-Protocol': chosen } } : {}) };
  };
}

/** `$default`: one text message holding base64-encoded MQTT packets. */
export function createWsDefaultHandler(deps: BrokerDeps) {
  return async (event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> => {
    const connectionId = event.requestContext.connectionId;
    const text = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '');
    const packets = decodeTextMessage(text, deps.config.maximumPacketSize);
    await handlePackets(deps, connectionId, packets);
    return { statusCode: 200 };
  };
}

/** `$disconnect`: best-effort, as API Gateway only promises to try. */
export function createWsDisconnectHandler(deps: BrokerDeps) {
  return async (event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> => {
    await handleConnectionClosed(deps, event.requestContext.connectionId);
    return { statusCode: 200 };
  };
}

function headerValue(headers: Record<string, string | undefined> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key ? headers[key] : undefined;
}
