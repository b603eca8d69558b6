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
import { handleConnectionBatches, handlePackets } from '../shared/broker/packets';
import { runFanoutJob } from '../shared/broker/fanout-worker';
import type { FanoutJob } from '../shared/broker/ports';
import { handleStreamFailure } from '../shared/broker/stream-failure';
import type { ConnectionDirectory, ConnectionInbox, ConnectionProbe } from '../shared/broker/ports';
import { Sequencer, type HandleMessages, type SequencerOptions } from '../shared/broker/sequencer';
import { sweep, type SweepResult, type SweeperOptions } from '../shared/broker/sweeper';
import { publishSysTopics, type SysFigures } from '../shared/broker/sys-topics';
import type { BatchResult, ConnectionOutcome, ListenerEvent } from '../shared/listener/events';
import type { BrokerSecurity } from '../shared/security/broker-security';
import { parseSequenced } from '../shared/gateway/sequence-prefix';
import { decodeTextMessage } from '../shared/gateway/text-frames';
import { forEachBounded } from '../shared/util/concurrency';
import { inRuleScope } from './rules-config';

/**
 * The listener's batches: the packets and closes of many connections, each connection's in
 * order, answered with each connection's outcome (a failed one does not fail the others).
 */
export function createPacketsHandler(deps: BrokerDeps, directory?: ConnectionDirectory) {
  return measured(deps, async (event: ListenerEvent): Promise<BatchResult | void> => {
    switch (event.type) {
      case 'batch': {
        const closing = event.connections.filter((c) => c.closed !== undefined).map((c) => c.connectionId);
        const open = event.connections.filter((c) => c.closed === undefined);
        const { gone, outcomes, records } = open.length === 0 ? NOTHING_HANDLED : await handleConnectionBatches(
          deps,
          open.map((c) => ({
            connectionId: c.connectionId,
            frames: c.packets.map((p) => Buffer.from(p, 'base64')),
            sequences: c.sequences,
            ...(c.protocolVersion ? { knownVersion: c.protocolVersion } : {}),
            ...(c.sourceAddress ? { sourceAddress: c.sourceAddress } : {}),
            ...(c.certificateUser !== undefined ? { certificateUser: c.certificateUser } : {}),
            ...(c.first ? { first: true } : {}),
            ...(c.state ? { record: c.state } : {}),
          })),
        );
        await endGone(deps, gone);
        // The closes after the packets: a connection's own packets all came in earlier batches.
        const closed = await endClosed(deps, closing);
        return {
          outcomes: Object.fromEntries([...outcomes, ...closed]),
          ...(records.size > 0 ? { states: Object.fromEntries(records) } : {}),
        };
      }
      case 'packets': {
        const { gone } = await handlePackets(deps, event.connectionId, event.packets.map((p) => Buffer.from(p, 'base64')), event.protocolVersion);
        return endGone(deps, gone);
      }
      case 'closed':
        return handleConnectionClosed(deps, event.connectionId);
      case 'failed':
        return endGone(deps, await handleStreamFailure(deps, event.connectionId, event.reasonCode, event.reason));
      case 'heartbeat':
        // The sweeper asks registered tasks whether they still answer (shared/broker/sweeper.ts).
        return directory?.recordHeartbeat(event.endpoint, deps.now());
    }
  });
}

/** A part of a large fan-out, from the packet handler that split it. */
export function createFanoutHandler(deps: BrokerDeps) {
  return measured(deps, async (job: FanoutJob): Promise<void> => {
    await endGone(deps, await runFanoutJob(deps, job));
  });
}

/** The WebSocket `$connect` event as API Gateway sends it (headers and query are on the event, not in the V2 type). */
export type WebSocketConnectEvent = APIGatewayProxyWebsocketEventV2 & {
  headers?: Record<string, string | undefined>;
  queryStringParameters?: Record<string, string | undefined>;
};

/** What `$connect` needs: the token check and where it remembers the identity for the CONNECT. */
export interface DoorSecurityDeps extends Pick<BrokerDeps, 'log' | 'now'> {
  readonly security: Pick<BrokerSecurity, 'verifyToken' | 'rememberDoorIdentity'>;
}

/** API Gateway closes a WebSocket connection after two hours at most. */
const MAX_CONNECTION_SECONDS = 2 * 60 * 60;

const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];

/**
 * `$connect`: agree the MQTT subprotocol. API Gateway does not echo Sec-WebSocket-Protocol by
 * itself, and a browser drops a handshake that offered one and got none back.
 *
 * A browser cannot set headers on a WebSocket, so it may pass a JWT as `?token=`: an invalid one
 * refuses the handshake (401) before any MQTT is spoken; a valid one is remembered for this
 * connection, and a CONNECT that then carries no credentials is that token's user.
 */
export function createWsConnectHandler(deps: DoorSecurityDeps) {
  return async (event: WebSocketConnectEvent): Promise<APIGatewayProxyResultV2> => {
    const offered = headerValue(event.headers, 'sec-websocket-protocol')
      ?.split(',')
      .map((p) => p.trim());
    const chosen = offered?.find((p) => SUBPROTOCOLS.includes(p));
    if (offered && !chosen) return { statusCode: 400, body: 'MQTT needs the "mqtt" WebSocket subprotocol' };
    const token = event.queryStringParameters?.token;
    if (token !== undefined) {
      const connectionId = event.requestContext.connectionId;
      const check = await deps.security.verifyToken(token);
      if (!check.ok) {
        deps.log.info('$connect refused: token', { connectionId, why: check.reason });
        return { statusCode: check.unavailable ? 503 : 401, body: 'invalid token' };
      }
      // Kept no longer than the token is valid, nor than API Gateway keeps the connection.
      const { expiresAt: tokenExpiresAt, ...identity } = check.identity;
      const expiresAt = Math.min(Math.ceil(deps.now() / 1000) + MAX_CONNECTION_SECONDS, tokenExpiresAt);
      await deps.security.rememberDoorIdentity(connectionId, { ...identity, tokenExpiresAt: tokenExpiresAt * 1000 }, expiresAt);
    }
    return { statusCode: 200, ...(chosen ? { headers: { 'Sec-WebSocket-Protocol': chosen } } : {}) };
  };
}

/**
 * `$default`: one text message holding base64-encoded MQTT packets. A message numbered by the
 * browser adapter (`<sequence>:<base64>`) is handled in the client's order through the
 * connection's inbox (shared/broker/sequencer.ts), however API Gateway schedules invocations.
 * A message without a number (a client that does not use the adapter) is handled at once, as
 * it comes: its packets keep their order within the message, but two such messages in flight
 * together may be handled in either order, so such a client should send one message and wait
 * for its answer before the next, or put packets that must stay in order in one message.
 */
export function createWsDefaultHandler(deps: BrokerDeps, inbox: ConnectionInbox, sequencing: Partial<SequencerOptions> = {}) {
  const sequencer = new Sequencer(deps, inbox, sequencing);
  return measured(deps, async (event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> => {
    const connectionId = event.requestContext.connectionId;
    const text = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '');
    const { sequence, base64 } = parseSequenced(text);
    // The address API Gateway saw the client at (every message of a connection carries the same).
    const handle = packetHandler(deps, connectionId, (event.requestContext as { identity?: { sourceIp?: string } }).identity?.sourceIp);
    if (sequence === undefined) await handle([base64]);
    else await sequencer.receive(connectionId, sequence, base64, handle);
    return { statusCode: 200 };
  });
}

/**
 * `$disconnect`: best-effort, as API Gateway only promises to try (the sweeper ends the
 * connections it never reports). Messages the client sent before closing and that wait in its
 * inbox are handled first.
 */
export function createWsDisconnectHandler(deps: BrokerDeps, inbox: ConnectionInbox, sequencing: Partial<SequencerOptions> = {}) {
  const sequencer = new Sequencer(deps, inbox, sequencing);
  return measured(deps, async (event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> => {
    const connectionId = event.requestContext.connectionId;
    await sequencer.close(connectionId, packetHandler(deps, connectionId), () => handleConnectionClosed(deps, connectionId));
    return { statusCode: 200 };
  });
}

/** The scheduled sweeper: due wills and expired sessions, then connections whose close never reached the broker, then the $SYS figures. */
export function createSweeperHandler(
  deps: BrokerDeps,
  directory: ConnectionDirectory,
  probe: ConnectionProbe,
  inbox: ConnectionInbox,
  options: Partial<SweeperOptions> = {},
  figures?: SysFigureSource,
) {
  return (): Promise<SweepResult> =>
    inRuleScope(async () => {
      const result = await sweep({
        broker: deps,
        directory,
        probe,
        options,
        end: async (connectionId) => {
          await handleConnectionClosed(deps, connectionId);
          await inbox.forget(connectionId);
        },
      });
      deps.log.info('sweep done', { ...result });
      // The sweep is done whatever happens to the figures: a failure here is logged, and the next run publishes them.
      if (figures) await publishSysFigures(deps, figures).catch((error: unknown) => deps.log.warn('$SYS figures not published', { error: String(error) }));
      await deps.rules?.settled();
      return result;
    });
}

/** Where the $SYS figures are read from (the counter items: shared/store/dynamo-stats.ts). */
export interface SysFigureSource {
  totals(): Promise<SysFigures>;
}

/** Flushes this process's counters, reads the fleet's sums and publishes them under $SYS/broker/. */
export async function publishSysFigures(deps: BrokerDeps, source: SysFigureSource): Promise<void> {
  await deps.stats?.flush();
  await publishSysTopics(deps, await source.totals());
}

/**
 * A handler, timed (its latency sampled for CloudWatch), its rule deliveries ended, and the process's counters flushed after
 * it when their interval has passed: before the invocation returns, since a Lambda is frozen
 * after. A failed flush is logged and its counts kept for the next.
 */
function measured<E, R>(deps: BrokerDeps, handler: (event: E) => Promise<R>): (event: E) => Promise<R> {
  return (event) =>
    inRuleScope(async () => {
      const started = performance.now();
      try {
        return await handler(event);
      } finally {
        // QoS 0 messages' rule deliveries do not hold up their packets, but end before the invocation does.
        await deps.rules?.settled();
        deps.stats?.latency(performance.now() - started);
        await deps.stats?.flushIfDue().catch((error: unknown) => deps.log.warn('stats flush failed', { error: String(error) }));
      }
    });
}

function packetHandler(deps: BrokerDeps, connectionId: string, sourceAddress?: string): HandleMessages {
  return async (bodies) => {
    const frames = bodies.flatMap((body) => decodeTextMessage(body, deps.config.maximumPacketSize));
    const { gone } = await handlePackets(deps, connectionId, frames, undefined, sourceAddress);
    await endGone(deps, gone);
  };
}

/** Connections found gone while delivering end as a close would end them (their wills published). */
async function endGone(deps: BrokerDeps, gone: readonly string[]): Promise<void> {
  await Promise.all(gone.map((connectionId) => handleConnectionClosed(deps, connectionId)));
}

const NOTHING_HANDLED = { gone: [], outcomes: new Map<string, ConnectionOutcome>(), records: new Map<string, never>() } as const;

/** Closes DynamoDB takes at once from one invocation (each a few calls), so a batch of hundreds does not flood it. */
const PARALLEL_CLOSES = 32;

/** The network connections of a batch that closed: each ended as its own close event would end it; one failing does not fail the others. */
async function endClosed(deps: BrokerDeps, connectionIds: readonly string[]): Promise<Map<string, ConnectionOutcome>> {
  const outcomes = new Map<string, ConnectionOutcome>();
  await forEachBounded(connectionIds, PARALLEL_CLOSES, async (connectionId) => {
    try {
      await handleConnectionClosed(deps, connectionId);
      outcomes.set(connectionId, 'handled');
    } catch (error) {
      // Its claim's lease lets the sweeper (or a repeated report) end it later.
      deps.log.error('ending a closed connection failed', { connectionId, error: String(error) });
      outcomes.set(connectionId, 'failed');
    }
  });
  return outcomes;
}

function headerValue(headers: Record<string, string | undefined> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key ? headers[key] : undefined;
}
