/**
 * What the listener sends to the packet handler (functions/packets.ts): JSON, so it crosses a
 * Lambda invoke unchanged. Packets are whole, framed, base64-encoded, in arrival order.
 */

import type { ConnectionRecord } from '../broker/ports';

/**
 * A connection's record as the packet handler last answered it (its will left out): the listener
 * keeps it and sends it back with the connection's next packets, so the handler need not read it
 * from DynamoDB. One batch of a connection is in flight at a time, so the copy is as fresh as the
 * last batch left it; only the connection's own packets change it (CONNECT, a topic alias).
 */
export type ConnectionState = Omit<ConnectionRecord, 'will'>;

/** One connection's packets in a batch. */
export interface ConnectionPacketsEvent {
  readonly connectionId: string;
  readonly packets: readonly string[];
  /**
   * Each packet's place in the order the listener task received packets, across all its
   * connections (one counter per task): the handler takes the batch's packets in this order
   * where it matters (a SUBSCRIBE before another client's PUBLISH).
   */
  readonly sequences: readonly number[];
  /** The version of the connection's CONNECT, once the listener has seen it (see handlePackets). */
  readonly protocolVersion?: 3 | 4 | 5;
  /**
   * The client's address (from the PROXY protocol header when that is on, else the socket's
   * peer), on the connection's first entry only: the one that carries its CONNECT.
   */
  readonly sourceAddress?: string;
  /**
   * The user name from the client's verified certificate (mutual TLS on the listener's TLS port),
   * on the first entry only, as `sourceAddress`: the listener vouches for it, so the client's
   * CONNECT cannot choose it.
   */
  readonly certificateUser?: string;
  /** The connection's first entry: nothing of it was handled before, so it has no record yet. */
  readonly first?: true;
  /** The connection's record as the last batch's answer gave it (see ConnectionState); absent: the handler reads it. */
  readonly state?: ConnectionState;
  /**
   * The network connection has closed, for this reason: the entry carries no packets, and comes
   * after every batch of the connection's packets was answered. The handler ends the connection
   * (its session detached or ended, its will settled) after the batch's packets.
   */
  readonly closed?: string;
}

export type ListenerEvent =
  /** The packets of many connections, each connection's in order: the listener's batches. */
  | { readonly type: 'batch'; readonly connections: readonly ConnectionPacketsEvent[] }
  /** One connection's packets (the shape before batches across connections; still handled). */
  | {
      readonly type: 'packets';
      readonly connectionId: string;
      readonly packets: readonly string[];
      readonly protocolVersion?: 3 | 4 | 5;
    }
  /** One connection's close (the shape before closes joined the batches; still handled). */
  | { readonly type: 'closed'; readonly connectionId: string; readonly reason: string }
  /** The task is alive, at this delivery endpoint (shared/listener/task-heartbeat.ts). */
  | { readonly type: 'heartbeat'; readonly endpoint: string }
  /** The byte stream cannot be framed (bad Remaining Length, packet over the limit): the handler closes it with the reason. */
  | { readonly type: 'failed'; readonly connectionId: string; readonly reasonCode: number; readonly reason: string };

/**
 * How each connection's packets of a batch went: handled; handled, but the connection was found
 * gone while answering it (the handler ended it); or failed (the listener closes that connection,
 * its client resending what was not acknowledged when it reconnects).
 */
export type ConnectionOutcome = 'handled' | 'gone' | 'failed';

/** The packet handler's answer to a 'batch' event. */
export interface BatchResult {
  readonly outcomes: Readonly<Record<string, ConnectionOutcome>>;
  /** The records of connections open after the batch whose record is new or changed (the listener sends each back with the next packets). */
  readonly states?: Readonly<Record<string, ConnectionState>>;
}

/** What the batcher answers a connection: how its packets went, and its record when it changed. */
export interface ConnectionAnswer {
  readonly outcome: ConnectionOutcome;
  readonly state?: ConnectionState;
}

/** Lambda refuses a synchronous invocation whose JSON event is larger than this (6 MB). */
export const LAMBDA_MAX_EVENT_BYTES = 6_291_456;

/** Invokes the packet handler: in-process locally, Lambda Invoke in the cloud. Answers a 'batch' with a BatchResult. */
export interface PacketSink {
  invoke(event: ListenerEvent): Promise<BatchResult | void>;
}
