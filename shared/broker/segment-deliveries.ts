/**
 * The deliveries of one segment's connections, recorded together (packets.ts). In a fleet every
 * device sends a PUBLISH now and then, so an invocation carries one PUBLISH from each of many
 * connections; recorded one connection at a time, each would claim packet ids on the backend
 * subscriber's session item for itself. Here a connection whose run of PUBLISHes ends waits until
 * every other connection of the segment still at work is waiting too (or has finished), or until
 * MAX_WAIT_MS has passed since the first began to wait; then all that wait are recorded at once:
 * one claim and one batched write per subscriber for the lot (Dispatcher.deliverGroups).
 *
 * Each connection still sees only its own outcome: its deliveries recorded (and its
 * acknowledgements may follow), or the failure of one of its recipients. Its packets stay in order
 * (it waits for its deliveries before handling the next packet), and nothing waits on anything but
 * a connection's own work, so the wait always ends.
 */
import type { Delivery } from './actions';
import type { Dispatcher } from './dispatcher';

/** Longest a connection waits for the others (a slow packet of one, a CONNECT's password hash, holds up nobody for longer). */
const MAX_WAIT_MS = 10;

interface Waiting {
  readonly deliveries: readonly Delivery[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class SegmentDeliveries {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** `working`: the connections of the segment that will either deliver or leave. */
  constructor(
    private readonly dispatcher: Pick<Dispatcher, 'deliverGroups'>,
    private working: number,
  ) {}

  /** Records one connection's deliveries with the others'; rejects with what failed one of its recipients. */
  deliver(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ deliveries, resolve, reject });
      if (!this.recordWhenAllWait()) this.timer ??= setTimeout(() => this.record(), MAX_WAIT_MS);
    });
  }

  /** A connection is done with the segment: the others no longer wait for it. */
  leave(): void {
    this.working -= 1;
    this.recordWhenAllWait();
  }

  private recordWhenAllWait(): boolean {
    if (this.waiting.length === 0 || this.waiting.length < this.working) return false;
    this.record();
    return true;
  }

  private record(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const group = this.waiting;
    this.waiting = [];
    if (group.length === 0) return;
    this.dispatcher.deliverGroups(group.map((waiting) => waiting.deliveries)).then(
      (errors) => group.forEach((waiting, i) => (errors[i] === undefined ? waiting.resolve() : waiting.reject(errors[i]))),
      (error: unknown) => group.forEach((waiting) => waiting.reject(error)),
    );
  }
}
