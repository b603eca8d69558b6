/**
 * The broker's entry: batches of framed packets, each connection's in order. The first packet of a
 * connection must be CONNECT. Each packet goes to its handler (handlers.ts), and what the handler
 * returns to the dispatcher, which carries it out before the next packet is handled, except within a run:
 * - consecutive QoS 0/1 PUBLISHes deliver together when the run ends, with the runs of the
 *   segment's other connections that end meanwhile (segment-deliveries.ts: one packet-id write per
 *   subscriber for all of them), and their acknowledgements come after the run's deliveries, so a
 *   PUBLISH whose delivery failed is never acknowledged;
 * - consecutive PUBACKs and PUBCOMPs complete their deliveries concurrently.
 * A protocol error closes that one connection (5.0: DISCONNECT with the reason code first), and
 * the rest of its packets are dropped, as the connection is. When the store cannot serve the batch
 * (DynamoDB unreachable or throttling after the client's retries), the connection is refused for
 * now (refusals.ts), and nothing the store did not keep is acknowledged.
 *
 * One invocation may carry the packets of many connections (handleConnectionBatches: the
 * listener's batches). The listener sends each connection's record back as the last invocation
 * answered it (`record`; one batch of a connection is in flight at a time, and only its own
 * packets change it), and says which connections are new (`first`: no record yet); the records of
 * the others are read with one BatchGetItem. The invocation answers the records it made or
 * changed (`records`: CONNECT, a topic alias set), their will left out. The packets are then taken
 * in arrival order across connections and cut into segments after every SUBSCRIBE and
 * UNSUBSCRIBE: within a segment the connections run concurrently (each its own packets in order)
 * and share one routing cache; segments run one after another, so a subscription made by a packet
 * that arrived earlier is in effect for every PUBLISH that arrived after it. Everything the
 * invocation sends goes out in one flush at the end. A connection whose packets fail is reported
 * failed; the others are not disturbed.
 */
import { decodePacket, type ProtocolVersion } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { closeWithReason, PartlyHandled, type Action, type Connected } from './actions';
import { newBatchState, newRoutingCache, type BatchState, type BrokerDeps, type PacketContext, type RoutingCache } from './context';
import { Dispatcher } from './dispatcher';
import { handlePacket } from './handlers';
import { Run, runKindOf } from './packet-runs';
import { BatchLimits } from './limits';
import { StoreUnavailableError, type ConnectionRecord } from './ports';
import { answerFailure, refuseForNow } from './refusals';
import { SegmentDeliveries } from './segment-deliveries';

const PUBLISH_TYPE = 3;
const SUBSCRIBE_TYPE = 8;
const UNSUBSCRIBE_TYPE = 10;

export interface HandledBatch {
  /** Connections found gone while sending: the caller ends them (handleConnectionClosed). */
  readonly gone: readonly string[];
}

/** One connection's packets in an invocation of many. */
export interface ConnectionFrames {
  readonly connectionId: string;
  readonly frames: readonly Buffer[];
  /**
   * Each frame's place in the order the door received the packets of all the invocation's
   * connections (ascending within a connection); absent: after every numbered frame.
   */
  readonly sequences?: readonly number[];
  /** The protocol version the door saw in the connection's CONNECT, if it knows it (see handlePackets). */
  readonly knownVersion?: ProtocolVersion;
  /** The client's network address as the door saw it (what authentication limits per address), if the door told. */
  readonly sourceAddress?: string;
  /** The user name the door took from the client's verified certificate (mutual TLS), if any. */
  readonly certificateUser?: string;
  /** The door vouches that nothing of this connection was handled before: it has no record to read. */
  readonly first?: boolean;
  /** The connection's record as the door kept it from the last invocation's answer (its will left out): not read again. */
  readonly record?: Omit<ConnectionRecord, 'will'>;
}

/** How a connection's packets went: handled, its connection found gone while sending, or failed (the door closes it). */
export type ConnectionOutcome = 'handled' | 'gone' | 'failed';

export interface HandledConnections extends HandledBatch {
  readonly outcomes: ReadonlyMap<string, ConnectionOutcome>;
  /** What each failed connection's packets failed with. */
  readonly errors: ReadonlyMap<string, unknown>;
  /** The records this invocation made or changed, of connections still open (their will left out), for the door to send back. */
  readonly records: ReadonlyMap<string, Omit<ConnectionRecord, 'will'>>;
}

/**
 * One connection's packets. `knownVersion`: the protocol version the door saw in the
 * connection's CONNECT, if it knows it; used only to say goodbye properly when the connection's
 * own record cannot be read. Throws what the packets failed with.
 */
export async function handlePackets(
  deps: BrokerDeps,
  connectionId: string,
  frames: readonly Buffer[],
  knownVersion?: ProtocolVersion,
  sourceAddress?: string,
): Promise<HandledBatch> {
  const handled = await handleConnectionBatches(deps, [{ connectionId, frames, ...(knownVersion ? { knownVersion } : {}), ...(sourceAddress ? { sourceAddress } : {}) }]);
  if (handled.errors.has(connectionId)) throw handled.errors.get(connectionId);
  return { gone: handled.gone };
}

/** The packets of many connections in one invocation (see the top of this file). */
export async function handleConnectionBatches(deps: BrokerDeps, batches: readonly ConnectionFrames[]): Promise<HandledConnections> {
  const dispatcher = new Dispatcher(deps);
  const ids = batches.map((b) => b.connectionId);
  const outcomes = new Map<string, ConnectionOutcome>(ids.map((id) => [id, 'handled']));
  const errors = new Map<string, unknown>();
  let records: Map<string, ConnectionRecord>;
  const unknown = batches.filter((b) => !b.record && !b.first).map((b) => b.connectionId);
  try {
    records = unknown.length > 0 ? await deps.store.connections.getConnections(unknown) : new Map();
    for (const { connectionId, record } of batches) if (record) records.set(connectionId, record);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    deps.stats?.count('storeUnavailable');
    for (const { connectionId, frames, knownVersion } of batches) {
      if (frames.length > 0) await dispatcher.perform(refuseForNow(deps, connectionId, frames[0], knownVersion, error));
    }
    return finish(deps, dispatcher, ids, outcomes, errors, []);
  }
  const works = batches.map((b) => new ConnectionWork(deps, dispatcher, b.connectionId, b.frames, records.get(b.connectionId), b.knownVersion, b));
  for (const segment of segmentsOf(batches)) {
    const routes = newSegmentRoutes();
    // Every PUBLISH of the segment had arrived before it began: their topics are looked up together.
    routes.prefetch(deps.store, publishTopicsOf(segment, batches, works));
    const running = segment.filter(({ connection }) => !works[connection]!.failed);
    // Their runs of PUBLISHes are recorded together: one claim per subscriber for the segment.
    const deliveries = new SegmentDeliveries(dispatcher, running.length);
    await Promise.all(
      running.map(async ({ connection, frames }) => {
        const work = works[connection]!;
        try {
          await work.handle(frames, routes, deliveries);
        } catch (error) {
          // This connection's packets stop here; the door closes it. The others go on.
          work.failed = true;
          outcomes.set(work.connectionId, 'failed');
          errors.set(work.connectionId, error);
        } finally {
          deliveries.leave();
        }
      }),
    );
  }
  return finish(deps, dispatcher, ids, outcomes, errors, works);
}

/** The invocation's one flush (others' bytes before those of the invocation's own connections); the connections found gone. */
async function finish(
  deps: BrokerDeps,
  dispatcher: Dispatcher,
  ids: readonly string[],
  outcomes: Map<string, ConnectionOutcome>,
  errors: ReadonlyMap<string, unknown>,
  works: readonly ConnectionWork[],
): Promise<HandledConnections> {
  // Before the flush, which forgets what it closed: no record for a connection closing.
  const records = new Map<string, Omit<ConnectionRecord, 'will'>>();
  for (const work of works) {
    const record = dispatcher.isClosing(work.connectionId) ? undefined : work.changedRecord();
    if (record) records.set(work.connectionId, record);
  }
  const gone = await dispatcher.flush(ids);
  for (const id of gone) if (outcomes.get(id) === 'handled') outcomes.set(id, 'gone');
  for (const [id, outcome] of outcomes) if (outcome !== 'handled') records.delete(id);
  if (errors.size > 0 && ids.length > 1) {
    deps.log.error('packets of some connections failed', { failed: [...errors].map(([id, error]) => ({ connectionId: id, error: String(error) })), connections: ids.length });
  }
  return { gone, outcomes, errors, records };
}

/**
 * The routing cache one segment's connections share (made here only). Every packet of the
 * invocation had arrived before its first read, so a read made for one connection's PUBLISH is as
 * fresh for another's; a SUBSCRIBE or UNSUBSCRIBE ends its segment.
 */
function newSegmentRoutes(): RoutingCache {
  return newRoutingCache();
}

/** The topics the segment's PUBLISH frames name (read from the frames; an aliased or malformed one is skipped), of connections that are open. */
function publishTopicsOf(segment: Segment, batches: readonly ConnectionFrames[], works: readonly ConnectionWork[]): Set<string> {
  const topics = new Set<string>();
  for (const { connection, frames } of segment) {
    if (!works[connection]!.isOpen) continue;
    for (const index of frames) {
      const topic = publishTopicOf(batches[connection]!.frames[index]!);
      if (topic) topics.add(topic);
    }
  }
  return topics;
}

/** A PUBLISH frame's topic name: after the fixed header's remaining length, a two-byte length and UTF-8. */
export function publishTopicOf(frame: Buffer): string | undefined {
  if (frame.length < 2 || frame[0]! >> 4 !== PUBLISH_TYPE) return undefined;
  let offset = 1;
  // The remaining length: at most four bytes, seven bits each, the top bit saying another follows.
  while (offset < 5 && offset < frame.length && frame[offset]! & 0x80) offset++;
  offset++;
  if (offset + 2 > frame.length) return undefined;
  const length = frame.readUInt16BE(offset);
  if (length === 0 || offset + 2 + length > frame.length) return undefined;
  const topic = frame.toString('utf8', offset + 2, offset + 2 + length);
  return topic.includes('\uFFFD') || topic.includes('+') || topic.includes('#') ? undefined : topic;
}

/** One segment: for each connection with packets in it, the indexes of those frames, in order. */
export type Segment = Array<{ readonly connection: number; readonly frames: number[] }>;

/** The invocation's packets in arrival order, cut after every SUBSCRIBE and UNSUBSCRIBE. */
export function segmentsOf(batches: readonly ConnectionFrames[]): Segment[] {
  const packets: Array<{ connection: number; frame: number; sequence: number; order: number }> = [];
  let order = 0;
  for (const [connection, batch] of batches.entries()) {
    for (let frame = 0; frame < batch.frames.length; frame++) {
      packets.push({ connection, frame, sequence: batch.sequences?.[frame] ?? Number.MAX_SAFE_INTEGER, order: order++ });
    }
  }
  packets.sort((a, b) => a.sequence - b.sequence || a.order - b.order);
  const segments: Segment[] = [];
  let current = new Map<number, number[]>();
  const cut = (): void => {
    if (current.size === 0) return;
    segments.push([...current].map(([connection, frames]) => ({ connection, frames })));
    current = new Map();
  };
  for (const { connection, frame } of packets) {
    const frames = current.get(connection) ?? [];
    frames.push(frame);
    current.set(connection, frames);
    const type = (batches[connection]!.frames[frame]![0] ?? 0) >> 4;
    if (type === SUBSCRIBE_TYPE || type === UNSUBSCRIBE_TYPE) cut();
  }
  cut();
  return segments;
}

/** One connection's packets through the invocation, segment by segment: its state carries from one segment to the next. */
class ConnectionWork {
  failed = false;
  /** Its record was made by a CONNECT of this invocation. */
  private opened = false;
  private batch: BatchState;
  private readonly run: Run;
  private readonly limits: BatchLimits;

  constructor(
    private readonly deps: BrokerDeps,
    private readonly dispatcher: Dispatcher,
    readonly connectionId: string,
    private readonly frames: readonly Buffer[],
    private connection: ConnectionRecord | undefined,
    private readonly knownVersion: ProtocolVersion | undefined,
    private readonly door: { readonly sourceAddress?: string; readonly certificateUser?: string },
  ) {
    this.batch = newBatchState(connection);
    this.run = new Run(dispatcher);
    this.limits = new BatchLimits(deps, frames);
  }

  /** Connected, and none of its packets failed in this invocation. */
  get isOpen(): boolean {
    return this.connection !== undefined && !this.failed;
  }

  /** Its record as this invocation leaves it, when made or changed here (a CONNECT, a topic alias set), its will left out. */
  changedRecord(): Omit<ConnectionRecord, 'will'> | undefined {
    const { connection, batch } = this;
    if (!connection || this.failed) return undefined;
    const stored = connection.topicAliases ?? {};
    const aliasesChanged = batch.topicAliases.size !== Object.keys(stored).length || [...batch.topicAliases].some(([alias, topic]) => stored[alias] !== topic);
    if (!this.opened && !aliasesChanged) return undefined;
    const { will: _will, topicAliases: _aliases, ...rest } = connection;
    return batch.topicAliases.size > 0 ? { ...rest, topicAliases: Object.fromEntries(batch.topicAliases) } : rest;
  }

  private context(): PacketContext {
    const { deps, connectionId, connection, batch } = this;
    const { sourceAddress, certificateUser } = this.door;
    return { deps, connectionId, connection, batch, ...(sourceAddress ? { sourceAddress } : {}), ...(certificateUser !== undefined ? { certificateUser } : {}) };
  }

  private async perform(actions: readonly Action[]): Promise<void> {
    const opened = actions.find((action): action is Connected => action.type === 'connected');
    if (opened) {
      this.opened = true;
      this.connection = opened.connection;
      this.batch = { ...newBatchState(this.connection), routes: this.batch.routes };
    }
    await this.dispatcher.perform(actions);
  }

  private answer(error: unknown, frame?: Buffer): Promise<void> {
    const { deps, connectionId, connection, knownVersion } = this;
    return this.dispatcher.perform(answerFailure({ deps, connectionId, connection, knownVersion }, error, frame));
  }

  /** The frames at `indexes`, in order, with the segment's routing cache and its deliveries. */
  async handle(indexes: readonly number[], routes: RoutingCache, deliveries: SegmentDeliveries): Promise<void> {
    const { deps, connectionId, dispatcher, run } = this;
    this.batch = { ...this.batch, routes };
    run.deliveries = deliveries;
    for (const index of indexes) {
      const frame = this.frames[index]!;
      const connection = this.connection;
      if (dispatcher.isClosing(connectionId)) break;
      if (connection?.tokenExpiresAt !== undefined && connection.tokenExpiresAt <= deps.now()) {
        // The token the connection was opened with has expired: 5.0 DISCONNECT 0xA0 Maximum connect time, then the close.
        deps.log.info('closing connection: its token expired', { connectionId, clientId: connection.clientId, username: connection.username });
        await dispatcher.perform([closeWithReason(connectionId, connection.protocolVersion, ReasonCode.MaximumConnectTime, 'token expired')]);
        break;
      }
      try {
        // Packet size and publish rate (5.0: DISCONNECT 0x95 / 0x96)
        await this.limits.admit(connection, index);
        const packet = decodePacket(frame, connection?.protocolVersion ?? 4);
        deps.stats?.count('packetsReceived');
        if (packet.cmd === 'publish') deps.stats?.count('publishReceived');
        const kind = runKindOf(packet, connection);
        if (kind !== run.kind) await run.end(this.context());
        if (kind === 'completions' && (packet.cmd === 'puback' || packet.cmd === 'pubcomp')) {
          run.addCompletion(packet);
          continue;
        }
        const actions = await handlePacket(this.context(), packet);
        if (kind === 'publishes') run.addPublish(actions);
        else await this.perform(actions);
      } catch (thrown) {
        let error = thrown;
        try {
          // What a handler decided before failing still happens, and so does what was acknowledged before the error.
          if (error instanceof PartlyHandled) {
            await this.perform(error.actions);
            error = error.failure;
          }
          await run.end(this.context());
        } catch (runError) {
          await this.answer(runError);
        }
        if (dispatcher.isClosing(connectionId)) break;
        await this.answer(error, frame);
      }
    }
    // A run ends with its segment: its deliveries are made before the next segment begins.
    try {
      await run.end(this.context());
    } catch (error) {
      await this.answer(error);
    }
  }
}
