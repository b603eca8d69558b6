/**
 * Runs of one connection's packets within a batch (packets.ts): consecutive QoS 0/1 PUBLISHes,
 * whose deliveries are recorded together when the run ends and acknowledged after them, and
 * consecutive PUBACKs and PUBCOMPs, completed concurrently with one drain per recipient.
 */
import type { Packet, PubackPacket, PubcompPacket } from '../protocol/codec';
import { deliver, type Action } from './actions';
import type { PacketContext } from './context';
import type { Dispatcher } from './dispatcher';
import { handlePacket } from './handlers';
import type { ConnectionRecord } from './ports';
import type { SegmentDeliveries } from './segment-deliveries';
import { forEachBounded } from '../util/concurrency';

const PARALLEL_COMPLETIONS = 16;

export type RunKind = 'publishes' | 'completions';

export function runKindOf(packet: Packet, connection: ConnectionRecord | undefined): RunKind | undefined {
  // A QoS 2 PUBLISH is routed at once: its receipt is marked routed only after its deliveries.
  if (packet.cmd === 'publish' && packet.qos < 2) return 'publishes';
  if (connection && (packet.cmd === 'puback' || packet.cmd === 'pubcomp')) return 'completions';
  return undefined;
}

/** Consecutive packets of one kind, carried out together when the run ends (when a packet of another kind comes, or the batch ends). */
export class Run {
  kind: RunKind | undefined;
  /** The segment's: a run's deliveries are recorded with those of the segment's other connections. */
  deliveries: SegmentDeliveries | undefined;
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
    if (publishes.length > 0) {
      // The run's deliveries first (recorded with the segment's others), its acknowledgements after, in order.
      const deliveries = publishes.flatMap((action) => (action.type === 'deliver' ? action.deliveries : []));
      // The rules' targets take the run's messages meanwhile, in one batch per target (apply-rules.ts).
      const rulesAccepted = publishes.flatMap((action) => (action.type === 'deliver' && action.rulesAccepted ? [action.rulesAccepted] : []));
      await Promise.all([this.deliveries ? this.deliveries.deliver(deliveries) : this.dispatcher.perform([deliver(deliveries)]), ...rulesAccepted]);
      await this.dispatcher.perform(publishes.filter((action) => action.type !== 'deliver'));
    }
    if (completions.length > 0) {
      const results: Action[][] = [];
      await forEachBounded([...completions.entries()], PARALLEL_COMPLETIONS, async ([i, packet]) => {
        results[i] = await handlePacket(ctx, packet);
      });
      await this.dispatcher.perform(oneDrainEach(results.flat()));
    }
  }
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
