/**
 * The listener task's one batcher: connections hand it their next packets (each connection one
 * batch at a time, see ClientConnection.pump) and, last, their close, and it sends those of many
 * connections to the packet handler in one invocation (so a disconnect storm, a deploy's, is a
 * few invocations rather than one per connection over Lambda's concurrency). A batch is sent when its window has passed since its
 * first connection joined (`batchWindowMs`; 0: at once, one connection per invocation), or
 * sooner when it is full: its JSON event would pass `maxEventBytes` (kept well under the 6 MB
 * Lambda takes) or its packets `maxInvocationPackets`. Batches are sent as they fill, without
 * waiting for earlier ones, so one slow invocation holds up only its own connections.
 *
 * Every packet gets a number from one counter of the task as it is framed (`nextSequence`), so
 * the handler knows the order in which the packets of different connections arrived.
 */
import type { Logger } from '../broker/ports';
import type { ConnectionAnswer, ConnectionPacketsEvent, ConnectionState, PacketSink } from './events';

export interface BatcherLimits {
  /** How long a batch waits for more connections after its first joined (ms); 0: no wait. */
  readonly batchWindowMs: number;
  /** The largest JSON event a batch may make, in bytes (Lambda takes 6,291,456). */
  readonly maxEventBytes: number;
  /** Most packets in one invocation, all connections together. */
  readonly maxInvocationPackets: number;
}

export const defaultBatcherLimits: BatcherLimits = {
  // Measured at fleet shape (docs/benchmark.md): at 500 messages/s a task's invocations carried 4
  // messages at 5 ms, 11 at 20 ms and 26 at 50 ms; DynamoDB calls per QoS 1 message fell from 0.59-0.72
  // (20 ms) to 0.44, p99 latency staying under 250 ms. Lower it where latency matters more than cost.
  batchWindowMs: 50,
  maxEventBytes: 4 * 1024 * 1024,
  maxInvocationPackets: 1_000,
};

/** The event's own bytes around its connections: `{"type":"batch","connections":[]}` and then some. */
const EVENT_BYTES = 64;
/** A connection's entry around its id and packets: its keys, quotes, brackets, the protocol version, a source address (IPv6 at most 45 characters). */
const ENTRY_BYTES = 160;
/** A packet's sequence number in the event: at most 16 digits and a comma. */
const SEQUENCE_BYTES = 17;

/** The bytes one packet adds to the event: base64, quotes, comma, and its sequence number. */
export function packetEventBytes(packetLength: number): number {
  return 4 * Math.ceil(packetLength / 3) + 3 + SEQUENCE_BYTES;
}

/** The bytes one connection's entry adds to the event, at most (its record, if carried, as JSON). */
export function entryEventBytes(connectionId: string, packets: readonly Buffer[], state?: ConnectionState): number {
  const stateBytes = state ? Buffer.byteLength(JSON.stringify(state)) : 0;
  return ENTRY_BYTES + stateBytes + connectionId.length + packets.reduce((sum, packet) => sum + packetEventBytes(packet.length), 0);
}

/** What a connection hands the batcher. */
export interface ConnectionPackets {
  readonly connectionId: string;
  readonly packets: readonly Buffer[];
  readonly sequences: readonly number[];
  readonly protocolVersion?: 3 | 4 | 5;
  readonly sourceAddress?: string;
  readonly certificateUser?: string;
  /** Nothing of the connection was handled before these packets. */
  readonly first?: boolean;
  /** The connection's record as the last answer gave it. */
  readonly state?: ConnectionState;
  /** The network connection closed, for this reason (no packets): the handler ends it. */
  readonly closed?: string;
}

/** What ClientConnection needs of the batcher. */
export interface PacketSubmitter {
  /** The most bytes one connection's entry may add to an event (entryEventBytes); one packet alone may pass it. */
  readonly maxEntryBytes: number;
  nextSequence(): number;
  /** Settles when the invocation carrying the packets has; rejects when that invocation failed as a whole. */
  submit(packets: ConnectionPackets): Promise<ConnectionAnswer>;
}

interface Waiting {
  readonly entry: ConnectionPacketsEvent;
  readonly resolve: (answer: ConnectionAnswer) => void;
  readonly reject: (error: unknown) => void;
}

export class PacketBatcher implements PacketSubmitter {
  private sequence = 0;
  private waiting: Waiting[] = [];
  private bytes = EVENT_BYTES;
  private packets = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly limits: BatcherLimits;
  /** Invocations sent and connections carried, for operators and tests. */
  private sent = { invocations: 0, connections: 0, packets: 0 };

  constructor(
    private readonly sink: PacketSink,
    limits: Partial<BatcherLimits> = {},
    private readonly log?: Logger,
  ) {
    this.limits = { ...defaultBatcherLimits, ...limits };
  }

  get maxEntryBytes(): number {
    return this.limits.maxEventBytes - EVENT_BYTES;
  }

  nextSequence(): number {
    return ++this.sequence;
  }

  stats(): { readonly invocations: number; readonly connections: number; readonly packets: number } {
    return { ...this.sent };
  }

  submit({ connectionId, packets, sequences, protocolVersion, sourceAddress, certificateUser, first, state, closed }: ConnectionPackets): Promise<ConnectionAnswer> {
    const bytes = entryEventBytes(connectionId, packets, state) + (closed === undefined ? 0 : Buffer.byteLength(JSON.stringify(closed)));
    if (this.waiting.length > 0 && (this.bytes + bytes > this.limits.maxEventBytes || this.packets + packets.length > this.limits.maxInvocationPackets)) {
      this.send();
    }
    const entry: ConnectionPacketsEvent = {
      connectionId,
      packets: packets.map((packet) => packet.toString('base64')),
      sequences,
      ...(protocolVersion ? { protocolVersion } : {}),
      ...(sourceAddress ? { sourceAddress } : {}),
      ...(certificateUser !== undefined ? { certificateUser } : {}),
      ...(first ? { first: true as const } : {}),
      ...(state ? { state } : {}),
      ...(closed !== undefined ? { closed } : {}),
    };
    const outcome = new Promise<ConnectionAnswer>((resolve, reject) => this.waiting.push({ entry, resolve, reject }));
    this.bytes += bytes;
    this.packets += packets.length;
    if (this.limits.batchWindowMs <= 0 || this.bytes >= this.limits.maxEventBytes || this.packets >= this.limits.maxInvocationPackets) this.send();
    else this.timer ??= setTimeout(() => this.send(), this.limits.batchWindowMs);
    return outcome;
  }

  /** The waiting connections' packets, in one invocation now. */
  private send(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = this.waiting;
    this.waiting = [];
    this.bytes = EVENT_BYTES;
    this.packets = 0;
    if (waiting.length === 0) return;
    this.sent.invocations++;
    this.sent.connections += waiting.length;
    this.sent.packets += waiting.reduce((sum, w) => sum + w.entry.packets.length, 0);
    this.sink.invoke({ type: 'batch', connections: waiting.map((w) => w.entry) }).then(
      (result) => {
        for (const { entry, resolve } of waiting) {
          // A handler that answers nothing (an older one) handled everything it did not throw on.
          const outcome = result ? result.outcomes[entry.connectionId] : 'handled';
          if (outcome === undefined) this.log?.error('packet handler said nothing of a connection', { connectionId: entry.connectionId });
          const state = result?.states?.[entry.connectionId];
          resolve({ outcome: outcome ?? 'failed', ...(state ? { state } : {}) });
        }
      },
      (error: unknown) => {
        for (const { reject } of waiting) reject(error);
      },
    );
  }
}
