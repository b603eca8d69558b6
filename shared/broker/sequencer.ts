/**
 * The API Gateway door's packets in the client's order. API Gateway may run two `$default`
 * invocations of one connection at once and gives messages no order; the browser adapter
 * numbers each message (shared/gateway/sequence-prefix.ts), and this puts them back in order:
 *
 * - A lease per connection, taken with a conditional write, lets one invocation at a time
 *   handle the connection's messages; the lease item also holds `next`, the sequence number
 *   expected next.
 * - A message that is `next` while no one holds the lease is handled at once (the common case:
 *   one conditional write to take the lease, one to let it go, one read).
 * - Otherwise it is parked; if the lease can then be taken, the taker handles every parked
 *   message from `next` on while they are consecutive. If it cannot, the holder will.
 * - The lost wake-up: a message parked while the holder was letting go would wait for ever. So
 *   the holder, after letting go, looks once more for a message at `next`, and takes the lease
 *   back if one is there. The parker's failed take was ordered before the holder's release on
 *   the same item, and the park before that, so the look (a strongly consistent read) sees it.
 * - A holder that dies keeps the lease until `leaseMs` ends; the next message takes it over.
 *   A message that never comes (its invocation failed) leaves a gap: once the message after it
 *   has waited `gapTimeoutMs`, the connection is closed, as its packet stream is broken.
 */
import { randomUUID } from 'node:crypto';
import type { BrokerDeps } from './context';
import type { ConnectionInbox, InboxLease, ParkedMessage } from './ports';

export interface SequencerOptions {
  /** How long a holder may work before another invocation may take over: above the handler's timeout. */
  readonly leaseMs: number;
  /** How long a parked message waits for the gap before it to fill before the connection is closed. */
  readonly gapTimeoutMs: number;
  /** Parked messages read (and handled as one batch) per round. */
  readonly batch: number;
  /** How long `$disconnect` waits for a busy holder before closing anyway. */
  readonly closeWaitMs: number;
}

export const defaultSequencerOptions: SequencerOptions = { leaseMs: 30_000, gapTimeoutMs: 30_000, batch: 25, closeWaitMs: 3_000 };

/** Handles the bodies (base64 of whole packets) of consecutive messages, in order. */
export type HandleMessages = (bodies: readonly string[]) => Promise<void>;

export class Sequencer {
  private readonly options: SequencerOptions;

  constructor(
    private readonly deps: Pick<BrokerDeps, 'gateway' | 'log' | 'now'>,
    private readonly inbox: ConnectionInbox,
    options: Partial<SequencerOptions> = {},
  ) {
    this.options = { ...defaultSequencerOptions, ...options };
  }

  /** One numbered message from the connection: handled now, or parked for whoever handles its turn. */
  async receive(connectionId: string, sequence: number, body: string, handle: HandleMessages): Promise<void> {
    const token = randomUUID();
    let lease = await this.inbox.acquire(connectionId, token, this.options.leaseMs, sequence);
    if (lease) {
      try {
        await handle([body]);
      } catch (error) {
        // Not lost: parked at its turn, for the next invocation to retry.
        await this.inbox.park(connectionId, sequence, body);
        await this.inbox.release(connectionId, token, sequence);
        throw error;
      }
      lease = { token, next: sequence + 1 };
    } else {
      await this.inbox.park(connectionId, sequence, body);
      lease = await this.inbox.acquire(connectionId, token, this.options.leaseMs);
      // Someone holds it: they look for parked messages after letting go, and find this one.
      if (!lease) return;
      if (sequence < lease.next) {
        this.deps.log.warn('message sequence already handled, dropped', { connectionId, sequence, next: lease.next });
        await this.inbox.removeParked(connectionId, [sequence]);
      }
      lease = await this.drain(connectionId, lease, handle);
      if (!lease) return;
    }
    await this.letGo(connectionId, lease, handle);
  }

  /**
   * The connection closed (`$disconnect`, or the sweeper): messages that arrived before the close
   * and are parked are handled first, then `closed` runs, then the inbox is forgotten.
   */
  async close(connectionId: string, handle: HandleMessages, closed: () => Promise<void>): Promise<void> {
    const token = randomUUID();
    const deadline = this.deps.now() + this.options.closeWaitMs;
    let lease = await this.inbox.acquire(connectionId, token, this.options.leaseMs);
    for (let attempt = 1; !lease && this.deps.now() < deadline; attempt++) {
      await sleep(Math.min(200, 10 * 2 ** attempt));
      lease = await this.inbox.acquire(connectionId, token, this.options.leaseMs);
    }
    try {
      if (lease) await this.drain(connectionId, lease, handle);
      else this.deps.log.warn('closing while another invocation still handles the connection', { connectionId });
    } finally {
      await closed();
      await this.inbox.forget(connectionId);
    }
  }

  /** Handles consecutive parked messages from `next` on; the lease still held, or undefined if lost. */
  private async drain(connectionId: string, lease: InboxLease, handle: HandleMessages): Promise<InboxLease | undefined> {
    let next = lease.next;
    for (;;) {
      const parked = await this.inbox.parked(connectionId, next, this.options.batch);
      const run = consecutiveFrom(next, parked);
      if (run.length === 0) {
        const waiting = parked[0];
        if (waiting && this.deps.now() - waiting.parkedAt > this.options.gapTimeoutMs) {
          await this.broken(connectionId, next, waiting.sequence);
          return undefined;
        }
        return { token: lease.token, next };
      }
      try {
        await handle(run.map((message) => message.body));
      } catch (error) {
        // Still parked: the next invocation retries them.
        await this.inbox.release(connectionId, lease.token, next);
        throw error;
      }
      next += run.length;
      if (!(await this.inbox.advance(connectionId, lease.token, next, this.options.leaseMs))) return this.lost(connectionId);
      await this.inbox.removeParked(connectionId, run.map((message) => message.sequence));
    }
  }

  /** Let go of the lease; then take it back if a message for `next` was parked meanwhile. */
  private async letGo(connectionId: string, lease: InboxLease, handle: HandleMessages): Promise<void> {
    let held: InboxLease | undefined = lease;
    while (held) {
      if (!(await this.inbox.release(connectionId, held.token, held.next))) return void this.lost(connectionId);
      if (!(await this.inbox.isParked(connectionId, held.next))) return;
      const again = await this.inbox.acquire(connectionId, held.token, this.options.leaseMs);
      // Taken by another invocation, which drains it.
      if (!again) return;
      held = await this.drain(connectionId, again, handle);
    }
  }

  private lost(connectionId: string): undefined {
    this.deps.log.warn('inbox lease ran out while handling; another invocation took over', { connectionId });
    return undefined;
  }

  private async broken(connectionId: string, missing: number, waiting: number): Promise<void> {
    this.deps.log.warn('closing connection: a message never arrived', { connectionId, missing, waiting, gapTimeoutMs: this.options.gapTimeoutMs });
    await this.inbox.forget(connectionId);
    await this.deps.gateway.close(connectionId);
  }
}

function consecutiveFrom(next: number, parked: readonly ParkedMessage[]): ParkedMessage[] {
  const run: ParkedMessage[] = [];
  for (const message of parked) {
    if (message.sequence !== next + run.length) break;
    run.push(message);
  }
  return run;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
