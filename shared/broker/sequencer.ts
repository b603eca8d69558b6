/**
 * The API Gateway door's packets in the client's order. API Gateway may run two `$default`
 * invocations of one connection at once and gives messages no order; the browser adapter
 * numbers each message (shared/gateway/sequence-prefix.ts), and this puts them back in order:
 *
 * - A lease per connection, taken with a conditional write, lets one invocation at a time
 *   handle the connection's messages; the lease item also holds `next`, the sequence number
 *   expected next.
 * - A message that is `next` while no one holds the lease is handled at once (the common case:
 *   one conditional write to take the lease, one to let it go).
 * - Otherwise it is parked; if the lease can then be taken, the taker handles every parked
 *   message from `next` on while they are consecutive. If it cannot, it marks the lease item
 *   `pending` (only while someone holds it) and leaves the message to the holder.
 * - The lost wake-up: a message parked just as the holder lets go must not wait for ever. Letting
 *   go clears and returns the mark in one atomic update, so either the mark came first and the
 *   holder sees it (and takes the lease back to handle what was parked), or the release came
 *   first and the mark's condition fails, and the parker takes the lease itself.
 * - A holder that dies keeps the lease until `leaseMs` ends; the next message takes it over.
 *   A message that never comes (its invocation failed) leaves a gap: once the message after it
 *   has waited `gapTimeoutMs`, the connection is closed, as its packet stream is broken.
 * - A CONNECT on another connection that takes the session while this connection's CONNECT is
 *   handled marks the lease item (takeover.ts); letting go reads and clears the mark with the
 *   pending one, and the holder closes the connection, its CONNACK already out.
 */
import { randomUUID } from 'node:crypto';
import type { BrokerDeps } from './context';
import type { ProtocolVersion } from '../protocol/codec';
import type { ConnectionInbox, InboxLease, ParkedMessage } from './ports';
import { closeAfterTakeover } from './takeover';

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

/** Taking the lease and finding it held by someone who lets go at that moment, again and again: not for long. */
const MAX_HANDOVER_ATTEMPTS = 20;

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
    const lease = await this.inbox.acquire(connectionId, token, this.options.leaseMs, sequence);
    if (lease) {
      try {
        await handle([body]);
      } catch (error) {
        // Not lost: parked at its turn, for the next invocation to retry.
        await this.inbox.park(connectionId, sequence, body);
        await this.releaseAfterFailure(connectionId, token, sequence);
        throw error;
      }
      return this.letGo(connectionId, { token, next: sequence + 1 }, handle);
    }
    await this.inbox.park(connectionId, sequence, body);
    const taken = await this.takeOrLeave(connectionId, token);
    // Someone holds it and was told: they handle this message after their own.
    if (!taken) return;
    if (sequence < taken.next) {
      this.deps.log.warn('message sequence already handled, dropped', { connectionId, sequence, next: taken.next });
      await this.inbox.removeParked(connectionId, [sequence]);
    }
    const drained = await this.drain(connectionId, taken, handle);
    if (drained) await this.letGo(connectionId, drained, handle);
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
        await this.releaseAfterFailure(connectionId, lease.token, next);
        throw error;
      }
      next += run.length;
      if (!(await this.inbox.advance(connectionId, lease.token, next, this.options.leaseMs))) return this.lost(connectionId);
      await this.inbox.removeParked(connectionId, run.map((message) => message.sequence));
    }
  }

  /** Let go of the lease; take it back while messages were parked and left to us meanwhile. */
  private async letGo(connectionId: string, lease: InboxLease, handle: HandleMessages): Promise<void> {
    let held: InboxLease | undefined = lease;
    while (held) {
      const outcome = await this.inbox.release(connectionId, held.token, held.next);
      if (outcome === 'lost') return void this.lost(connectionId);
      if (outcome === 'released') return;
      // Its CONNACK is out (the handling before this flushed it): now the takeover's DISCONNECT.
      if (outcome !== 'pending') return this.takenOver(connectionId, outcome.takenOver, true);
      const again = await this.takeOrLeave(connectionId, held.token);
      if (!again) return;
      held = await this.drain(connectionId, again, handle);
    }
  }

  /** After parking: take the lease, or leave the parked message to whoever holds it. */
  private async takeOrLeave(connectionId: string, token: string): Promise<InboxLease | undefined> {
    for (let attempt = 0; attempt < MAX_HANDOVER_ATTEMPTS; attempt++) {
      const lease = await this.inbox.acquire(connectionId, token, this.options.leaseMs);
      if (lease) return lease;
      if (await this.inbox.markPending(connectionId)) return undefined;
      // The holder let go between the two: try to take it again.
    }
    throw new Error(`inbox of ${connectionId}: lease neither taken nor held after ${MAX_HANDOVER_ATTEMPTS} attempts`);
  }

  /** Letting go after a failed handling: a takeover mark read then closes the connection without a word (its CONNACK may not be out). */
  private async releaseAfterFailure(connectionId: string, token: string, next: number): Promise<void> {
    const outcome = await this.inbox.release(connectionId, token, next);
    if (typeof outcome === 'object') await this.takenOver(connectionId, outcome.takenOver, false);
  }

  /** Another CONNECT took the session while this connection's CONNECT was handled, and left the close to us (takeover.ts). */
  private async takenOver(connectionId: string, version: ProtocolVersion, connackSent: boolean): Promise<void> {
    try {
      await closeAfterTakeover(this.deps, connectionId, version, connackSent);
    } catch (error) {
      this.deps.log.warn('closing a connection taken over failed', { connectionId, error: String(error) });
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
