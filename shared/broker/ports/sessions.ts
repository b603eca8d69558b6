/** Sessions: the state a client id keeps across connections. */
import type { ProtocolVersion } from '../../protocol/codec';
import type { ConnectionRecord } from './connections';
import type { DueWill, WillMessage } from './messages';

/** The part of a session that delivery needs: where the client is now, and how it speaks. */
export interface SessionRecord {
  readonly clientId: string;
  readonly connectionId?: string;
  readonly protocolVersion: ProtocolVersion;
  /** 5.0: the largest packet the client accepts (CONNECT Maximum Packet Size); absent = no limit. */
  readonly maximumPacketSize?: number;
  /** QoS 1 and 2 messages the client accepts unacknowledged (5.0 Receive Maximum; 65535 otherwise). */
  readonly receiveMaximum: number;
  /** 5.0: topic aliases the client accepts from the broker; 0 = none. */
  readonly topicAliasMaximum: number;
}

/** Events counted against a fixed-window rate limit (limits.ts rateWindow): refused when the window would pass `limit`. */
export interface RateCharge {
  readonly key: string;
  readonly windowStart: number;
  readonly windowSeconds: number;
  readonly amount: number;
  readonly limit: number;
}

export interface OpenSessionRequest {
  readonly clientId: string;
  readonly connectionId: string;
  /**
   * The user name of the identity connecting; absent = anonymous. A session belongs to the
   * identity that created it: only that identity claims it while it lives.
   */
  readonly owner?: string;
  /**
   * The most sessions one owner may hold (anonymous clients are one owner); absent: not counted.
   * A session new to its owner beyond it is not opened ('quota-exceeded').
   */
  readonly sessionsPerUser?: number;
  readonly protocolVersion: ProtocolVersion;
  readonly cleanStart: boolean;
  /**
   * The session lasts only as long as this connection (3.1.1 Clean Session 1, 5.0 Session Expiry
   * Interval 0): a connection that takes the client id over must not resume it.
   */
  readonly endsWithConnection?: boolean;
  readonly maximumPacketSize?: number;
  readonly receiveMaximum: number;
  readonly topicAliasMaximum: number;
  /**
   * The claim holds the session's deliveries back (connectHold) until the CONNECT releases it;
   * if the CONNECT dies first, the hold lapses after this long (ms).
   */
  readonly holdMs: number;
  /**
   * The connection's record, when the caller has it ready: if no session item exists for the
   * client id, the new session and this record are written together in one call (the result says
   * `created`), and the caller writes the record no more.
   */
  readonly connection?: ConnectionRecord;
  /**
   * The connect rate (MQTT_CONNECT_RATE): this CONNECT counted in its client id's window, before
   * anything of the session is touched; 'rate-exceeded' (nothing changed) when the window is full.
   * On the short way, in the same transaction as the new session.
   */
  readonly connectRate?: RateCharge;
}

export interface OpenSessionResult {
  readonly sessionPresent: boolean;
  /** The connection that held this client id until now, which must be closed (takeover). */
  readonly previousConnectionId?: string;
  /** How that connection speaks, so it is told in its own protocol version. */
  readonly previousProtocolVersion?: ProtocolVersion;
  /**
   * The connection the previous claim took the session from. Its CONNECT should have closed it;
   * if that CONNECT died first, it is still open, and this one closes it (usually it is long gone).
   */
  readonly earlierTakenOver?: { readonly connectionId: string; readonly protocolVersion: ProtocolVersion };
  /** A clean start ended a session whose delayed will was still pending: it is due now. */
  readonly endedSessionWill?: WillMessage;
  /**
   * No session existed: a new one was written together with the request's connection record. It
   * holds no deliveries back (it has no subscriptions, so nothing is routed to it before its
   * CONNACK), and has nothing in flight, queued, subscribed or willed: nothing to resend, drain,
   * cancel or reauthorize.
   */
  readonly created?: boolean;
}

export interface CloseSessionOptions {
  /**
   * The connection's record is deleted too, whatever the outcome, in the same write as the
   * session's when it can be (for a caller with nothing left to do with it: no will to settle).
   */
  readonly forgetConnection?: boolean;
}

export type CloseSessionResult = 'closed' | 'taken-over';

/** Sessions: opened (or taken over) by a CONNECT, detached or ended with their connection, expired by the timers. */
export interface SessionStore {

  /**
   * Claim the session for a connection (whoever held it is named, to be closed), holding its
   * deliveries back for the CONNECT. Clean Start, a session past its expiry and one that ended
   * with its connection start afresh: subscriptions, QoS state, queue and will gone (the will
   * handed back to publish).
   * 'owned-by-another': a live session created by another identity; nothing was changed (not its
   * connection, queue, subscriptions nor will; a clean start wipes nothing).
   */
  openSession(request: OpenSessionRequest): Promise<OpenSessionResult | 'owned-by-another' | 'quota-exceeded' | 'rate-exceeded'>;
  /**
   * Detach the connection from its session; `endSession` deletes the session's state too.
   * 'taken-over': another connection holds the session now, and nothing was changed. Redone by
   * the connection that closed it (its caller died half way), it is 'closed' again.
   */
  closeSession(clientId: string, connectionId: string, endSession: boolean, expiryInterval: number, options?: CloseSessionOptions): Promise<CloseSessionResult>;
  getSessions(clientIds: readonly string[]): Promise<Map<string, SessionRecord>>;
  /**
   * Sessions whose expiry has passed and that no connection holds again: their state and routes
   * are deleted. Returns how many, and their pending delayed wills (to publish now), unless a
   * publisher claimed one less than `willLeaseMs` ago (see WillStore.claimDueWills).
   */
  endExpiredSessions(now: number, limit: number, willLeaseMs: number): Promise<{ ended: number; wills: DueWill[] }>;
}
