/**
 * What handling a packet comes to. A handler changes state through the store ports and returns
 * what must happen besides, as actions; the dispatcher (dispatcher.ts) carries them out in order,
 * and stops at the first that fails. Nothing reaches a connection any other way.
 */
import type { Packet, ProtocolVersion } from '../protocol/codec';
import type { ConnectionRecord, QueuedMessage, Recipient } from './ports';

/** One message on its way to one client. */
export interface Delivery {
  readonly recipient: Recipient;
  /** The message as this client receives it: QoS, RETAIN and subscription identifiers decided. */
  readonly message: QueuedMessage;
}

export type Action = Send | Deliver | Drain | Routed | Close | Connected;

/** A packet to a connection, in its protocol version. */
export interface Send {
  readonly type: 'send';
  readonly connectionId: string;
  readonly version: ProtocolVersion;
  readonly packet: Packet;
  /** 5.0: a PUBLISH may travel with a topic alias, within the client's Topic Alias Maximum. */
  readonly topicAliasMaximum?: number;
}

/**
 * Messages to sessions: every QoS 1/2 one recorded in flight (or queued) before a byte is sent,
 * then sent (deliver.ts). Whatever comes after it in a list happens only once it succeeded: an
 * acknowledgement after the deliveries it confirms.
 */
export interface Deliver {
  readonly type: 'deliver';
  readonly deliveries: readonly Delivery[];
  /** The rules' targets have the message (shared/broker/apply-rules.ts): awaited with the deliveries, before what follows. */
  readonly rulesAccepted?: Promise<void>;
}

/**
 * A connected client's queue: claimed into flight, sent, then the hold on new deliveries released,
 * so that nothing new overtakes what was queued (drain.ts). `hold`: the claim's token (a CONNECT's
 * own, taken when it opened the session); a new one when absent.
 */
export interface Drain {
  readonly type: 'drain';
  readonly recipient: Recipient;
  readonly hold?: string;
}

/** A QoS 2 PUBLISH's deliveries are made: its receipt is marked routed, so a resend is acknowledged, not routed again. */
export interface Routed {
  readonly type: 'routed';
  readonly clientId: string;
  readonly packetId: number;
}

/** Close a connection; with a reason code, a 5.0 client first hears DISCONNECT carrying it. */
export interface Close {
  readonly type: 'close';
  readonly connectionId: string;
  readonly version?: ProtocolVersion;
  readonly reasonCode?: number;
  /** MQTT 5.0 3.14.2.2.3: a Reason String may say more; a protocol error's own words, never an internal failure's. */
  readonly reasonString?: string;
}

/** CONNECT accepted: the packets after it in the batch are this connection's. */
export interface Connected {
  readonly type: 'connected';
  readonly connection: ConnectionRecord;
}

export function send(connectionId: string, version: ProtocolVersion, packet: Packet, topicAliasMaximum?: number): Send {
  return { type: 'send', connectionId, version, packet, ...(topicAliasMaximum ? { topicAliasMaximum } : {}) };
}

export function deliver(deliveries: readonly Delivery[], rulesAccepted?: Promise<void>): Deliver {
  return { type: 'deliver', deliveries, ...(rulesAccepted ? { rulesAccepted } : {}) };
}

export function drain(recipient: Recipient, hold?: string): Drain {
  return { type: 'drain', recipient, ...(hold !== undefined ? { hold } : {}) };
}

export function routed(clientId: string, packetId: number): Routed {
  return { type: 'routed', clientId, packetId };
}

/** Close a connection; a 5.0 client first learns why. */
export function closeWithReason(connectionId: string, version: ProtocolVersion, reasonCode: number, reasonString?: string): Close {
  return { type: 'close', connectionId, version, reasonCode, ...(reasonString ? { reasonString } : {}) };
}

/** Close a connection without a word (after the client's DISCONNECT, or before any CONNECT). */
export function close(connectionId: string): Close {
  return { type: 'close', connectionId };
}

export function connected(connection: ConnectionRecord): Connected {
  return { type: 'connected', connection };
}

/**
 * A handler failed part way, after deciding actions that must happen all the same (a CONNECT
 * that took a session over closes the connection it took it from): they are carried out, then
 * the failure is answered as any other.
 */
export class PartlyHandled extends Error {
  constructor(
    readonly actions: readonly Action[],
    readonly failure: unknown,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
    this.name = 'PartlyHandled';
  }
}
