/**
 * The broker's entry: a batch of framed packets from one connection, handled in order. The first
 * must be CONNECT. Each packet goes to its handler (handlers.ts), and what the handler returns to
 * the dispatcher, which carries it out before the next packet is handled, except within a run:
 * - consecutive QoS 0/1 PUBLISHes deliver together when the run ends (one packet-id write per
 *   subscriber for the run), and their acknowledgements come after the run's deliveries, so a
 *   PUBLISH whose delivery failed is never acknowledged;
 * - consecutive PUBACKs and PUBCOMPs complete their deliveries concurrently.
 * A protocol error closes that one connection (5.0: DISCONNECT with the reason code first), and
 * the rest of the batch is dropped, as the connection is. When the store cannot serve the batch
 * (DynamoDB unreachable or throttling after the client's retries), the connection is refused for
 * now (refusals.ts), and nothing the store did not keep is acknowledged.
 */
import { decodePacket, type Packet, type ProtocolVersion, type PubackPacket, type PubcompPacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import { closeWithReason, deliver, PartlyHandled, type Action, type Connected } from './actions';
import { newBatchState, type BrokerDeps, type PacketContext } from './context';
import { Dispatcher } from './dispatcher';
import { handlePacket } from './handlers';
import { BatchLimits } from './limits';
import { StoreUnavailableError, type ConnectionRecord } from './ports';
import { answerFailure, refuseForNow } from './refusals';
import { forEachBounded } from '../util/concurrency';

const PARALLEL_COMPLETIONS = 16;

export interface HandledBatch {
  /** Connections found gone while sending: the caller ends them (handleConnectionClosed). */
  readonly gone: readonly string[];
}

/**
 * `knownVersion`: the protocol version the door saw in the connection's CONNECT, if it knows it;
 * used only to say goodbye properly when the connection's own record cannot be read.
 */
export async function handlePackets(
  deps: BrokerDeps,
  connectionId: string,
  frames: readonly Buffer[],
  knownVersion?: ProtocolVersion,
): Promise<HandledBatch> {
  const dispatcher = new Dispatcher(deps);
  let connection: ConnectionRecord | undefined;
  try {
    connection = await deps.store.connections.getConnection(connectionId);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError) || frames.length === 0) throw error;
    await dispatcher.perform(refuseForNow(deps, connectionId, frames[0], knownVersion, error));
    return { gone: await dispatcher.flush(connectionId) };
  }
  let batch = newBatchState(connection);
  const context = (): PacketContext => ({ deps, connectionId, connection, batch });
  const perform = async (actions: readonly Action[]): Promise<void> => {
    const opened = actions.find((action): action is Connected => action.type === 'connected');
    if (opened) {
      connection = opened.connection;
      batch = newBatchState(connection);
    }
    await dispatcher.perform(actions);
  };
  const answer = (error: unknown, frame?: Buffer): Promise<void> => dispatcher.perform(answerFailure({ deps, connectionId, connection, knownVersion }, error, frame));
  const run = new Run(dispatcher);
  const limits = new BatchLimits(deps, frames);

  for (const [index, frame] of frames.entries()) {
    if (dispatcher.isClosing(connectionId)) break;
    if (connection?.tokenExpiresAt !== undefined && connection.tokenExpiresAt <= deps.now()) {
      // The token the connection was opened with has expired: 5.0 DISCONNECT 0xA0 Maximum connect time, then the close.
      deps.log.info('closing connection: its token expired', { connectionId, clientId: connection.clientId, username: connection.username });
      await dispatcher.perform([closeWithReason(connectionId, connection.protocolVersion, ReasonCode.MaximumConnectTime, 'token expired')]);
      break;
    }
    try {
      // Packet size and publish rate (5.0: DISCONNECT 0x95 / 0x96)
      await limits.admit(connection, index);
      const packet = decodePacket(frame, connection?.protocolVersion ?? 4);
      const kind = runKindOf(packet, connection);
      if (kind !== run.kind) await run.end(context());
      if (kind === 'completions' && (packet.cmd === 'puback' || packet.cmd === 'pubcomp')) {
        run.addCompletion(packet);
        continue;
      }
      const actions = await handlePacket(context(), packet);
      if (kind === 'publishes') run.addPublish(actions);
      else await perform(actions);
    } catch (thrown) {
      let error = thrown;
      try {
        // What a handler decided before failing still happens, and so does what was acknowledged before the error.
        if (error instanceof PartlyHandled) {
          await perform(error.actions);
          error = error.failure;
        }
        await run.end(context());
      } catch (runError) {
        await answer(runError);
      }
      if (dispatcher.isClosing(connectionId)) break;
      await answer(error, frame);
    }
  }
  try {
    await run.end(context());
  } catch (error) {
    await answer(error);
  }
  return { gone: await dispatcher.flush(connectionId) };
}

type RunKind = 'publishes' | 'completions';

function runKindOf(packet: Packet, connection: ConnectionRecord | undefined): RunKind | undefined {
  // A QoS 2 PUBLISH is routed at once: its receipt is marked routed only after its deliveries.
  if (packet.cmd === 'publish' && packet.qos < 2) return 'publishes';
  if (connection && (packet.cmd === 'puback' || packet.cmd === 'pubcomp')) return 'completions';
  return undefined;
}

/** Consecutive packets of one kind, carried out together when the run ends (when a packet of another kind comes, or the batch ends). */
class Run {
  kind: RunKind | undefined;
  private publishes: Action[] = [];
  private completions: Array<PubackPacket | PubcompPacket> = [];

  constructor(private readonly dispatcher: Dispatcher) {}

  /** A PUBLISH's actions (its deliveries, its acknowledgement), carried out when the run ends. */
  addPublish(actions: readonly Action[]): void {
    this.kind = 'publishes';
    this.publishes.push(...actions);
  }

  /** A PUBACK or PUBCOMP, handled with the others of the run when it ends. */
  addCompletion(packet: PubackPacket | PubcompPacket): void {
    this.kind = 'completions';
    this.completions.push(packet);
  }

  async end(ctx: PacketContext): Promise<void> {
    const { publishes, completions } = this;
    this.kind = undefined;
    this.publishes = [];
    this.completions = [];
    if (publishes.length > 0) await this.dispatcher.perform(deliveriesFirst(publishes));
    if (completions.length > 0) {
      const results: Action[][] = [];
      await forEachBounded([...completions.entries()], PARALLEL_COMPLETIONS, async ([i, packet]) => {
        results[i] = await handlePacket(ctx, packet);
      });
      await this.dispatcher.perform(oneDrainEach(results.flat()));
    }
  }
}

/** The run's deliveries first, as one (one packet-id write per subscriber); its acknowledgements after, in order. */
function deliveriesFirst(actions: readonly Action[]): Action[] {
  const deliveries = actions.flatMap((action) => (action.type === 'deliver' ? action.deliveries : []));
  return [deliver(deliveries), ...actions.filter((action) => action.type !== 'deliver')];
}

/** One drain claims what all the run's completions freed room for. */
function oneDrainEach(actions: readonly Action[]): Action[] {
  const draining = new Set<string | undefined>();
  return actions.filter((action) => {
    if (action.type !== 'drain' || action.hold !== undefined) return true;
    if (draining.has(action.recipient.connectionId)) return false;
    draining.add(action.recipient.connectionId);
    return true;
  });
}
