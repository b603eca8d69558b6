/**
 * What every handler works with: the broker's dependencies and configuration, the packet's
 * context, and the one type every packet handler has.
 */
import type { Packet } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { send, type Action, type Send } from './actions';
import { newRoutingCache, type RoutingCache } from './routing-cache';
import type { BrokerStats } from './stats';
import type {
  BrokerStore,
  ConnectionGateway,
  ConnectionInbox,
  ConnectionRecord,
  Doors,
  FanoutWorkers,
  Logger,
  MessageRules,
  Recipient,
  Security,
  SecurityStore,
} from './ports';

export { newRoutingCache, RoutingCache, type Routing } from './routing-cache';

export interface BrokerConfig {
  /** Largest packet the broker accepts, announced to 5.0 clients in CONNACK. */
  readonly maximumPacketSize: number;
  /**
   * The broker's Receive Maximum: QoS 1 and 2 PUBLISHes a 5.0 client may send it unacknowledged,
   * announced in CONNACK below 65535 (the protocol's limit, which is neither announced nor
   * counted). Not the client's own Receive Maximum, which bounds the broker's deliveries to it.
   */
  readonly receiveMaximum: number;
  /** Topic aliases a 5.0 client may set on its PUBLISHes. */
  readonly topicAliasMaximum: number;
  /** Recipients one handler delivers to itself; a larger fan-out is split across workers. */
  readonly fanoutPartSize: number;
  /** Longest topic name or filter, in UTF-8 bytes (they become DynamoDB keys, which hold 2,048). */
  readonly maxTopicLength: number;
  /** Most levels in a topic name or filter. */
  readonly maxTopicLevels: number;
  readonly maxSubscriptionsPerClient: number;
  /** Subscriptions of all the sessions of one user name (anonymous clients count as one user); absent: not counted. Beyond it: SUBACK 0x97. */
  readonly maxSubscriptionsPerUser?: number;
  /** Longest client identifier, in UTF-8 bytes (it becomes a DynamoDB key). */
  readonly maxClientIdLength: number;
  /** Longest Session Expiry Interval, in seconds; a 5.0 client asking for more is told this one in CONNACK. */
  readonly maxSessionExpiry: number;
  /**
   * Longest keep-alive, in seconds (MQTT_MAX_KEEPALIVE); absent: each door's own limit. A 5.0
   * client asking for more, or none, is told it as Server Keep Alive; a 3.1.1 client is held to it
   * (shared/broker/keep-alive.ts).
   */
  readonly maxKeepAlive?: number;
  /** QoS 1/2 messages one session's queue holds; beyond it a message is dropped for that session (logged). */
  readonly maxQueuedMessages: number;
  /** Bytes (topic and payload) one session's queue holds; a message that would pass it is dropped for that session (logged). */
  readonly maxQueuedBytes: number;
  /** Sessions (connected or not) one user name holds, anonymous clients counting as one user; absent: not counted. Beyond it: CONNACK 0x97. */
  readonly maxSessionsPerUser?: number;
  /** Topics holding a retained message that one user name stored first (anonymous clients count as one user); absent: not counted. */
  readonly maxRetainedPerUser?: number;
  /** Retained-tree nodes one subscription's replay reads below its wildcards; the rest is not replayed (logged). */
  readonly maxRetainedReplay: number;
  /** PUBLISH packets one client may send; absent = no limit. Over it: DISCONNECT 0x96. */
  readonly publishRate?: RateLimit;
  /** CONNECTs per client id that pass authentication; absent = no limit. Over it: CONNACK 0x9F. */
  readonly connectRate?: RateLimit;
}

/** At most `count` in each fixed window of `perSeconds` seconds. */
export interface RateLimit {
  readonly count: number;
  readonly perSeconds: number;
}

export const defaultBrokerConfig: BrokerConfig = {
  maximumPacketSize: 256 * 1024,
  receiveMaximum: 100,
  topicAliasMaximum: 32,
  fanoutPartSize: 250,
  maxTopicLength: 1024,
  maxTopicLevels: 32,
  maxSubscriptionsPerClient: 100,
  maxClientIdLength: 256,
  maxSessionExpiry: 7 * 24 * 60 * 60,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 16 * 1024 * 1024,
  maxSessionsPerUser: 10_000,
  maxSubscriptionsPerUser: 100_000,
  maxRetainedPerUser: 10_000,
  maxRetainedReplay: 1000,
  // One a second on average, AWS IoT Core's rate per client id, counted as 60 a minute so that a
  // device flapping through a burst of reconnects is not shut out; a reconnect loop is, for the
  // rest of its minute. One counter item per window, as every rate here.
  connectRate: { count: 60, perSeconds: 60 },
};

/** Everything a handler may touch, built once per process by an entry point. */
export interface BrokerDeps {
  readonly store: BrokerStore;
  readonly gateway: ConnectionGateway;
  /** What each connection's door carries: keep-alive, packet sizes in and out (shared/gateway/ knows the doors). */
  readonly doors: Doors;
  readonly log: Logger;
  readonly config: BrokerConfig;
  readonly now: () => number;
  /** Where large fan-outs send their further parts; without it one handler delivers everything. */
  readonly fanout?: FanoutWorkers;
  /** Authentication and topic access (a port; shared/security/ implements it). */
  readonly security: Security;
  /** Users, door identities and rate counters. */
  readonly securityStore: SecurityStore;
  /** The broker's counters (stats.ts), flushed by the entry point; none: nothing counted. */
  readonly stats?: BrokerStats;
  /**
   * The API Gateway door's inbox (sequencer.ts): a CONNECT that takes over one of that door's
   * connections may leave its closing to that connection's own invocation (takeover.ts). None:
   * taken-over connections are closed by the CONNECT that took them over.
   */
  readonly inbox?: ConnectionInbox;
  /** The operator's rules (shared/rules/, docs/rules.md), offered every routed message; none: no rules. */
  readonly rules?: MessageRules;
}

/** One packet from one client: who sent it, and what its batch has learned so far. */
export interface PacketContext {
  readonly deps: BrokerDeps;
  readonly connectionId: string;
  /** The connection's record, from its CONNECT on; undefined while its CONNECT is handled. */
  readonly connection: ConnectionRecord | undefined;
  readonly batch: BatchState;
  /** The client's network address, when the door told it (authentication limits failures per address). */
  readonly sourceAddress?: string;
  /** The user name the door took from the client's verified certificate (mutual TLS on the listener), if any. */
  readonly certificateUser?: string;
}

/** Every packet handler: the packet in, what must happen out (the dispatcher carries it out, in order). */
export type PacketHandler<P extends Packet> = (ctx: PacketContext, packet: P) => Promise<Action[]>;

/** The context of a packet that comes after CONNECT. */
export interface ConnectedContext extends PacketContext {
  readonly connection: ConnectionRecord;
}

/** The handler of a packet only a connected client may send. */
export function afterConnect<P extends Packet>(handle: (ctx: ConnectedContext, packet: P) => Promise<Action[]>): PacketHandler<P> {
  return (ctx, packet) => {
    const { connection } = ctx;
    // [MQTT-3.1.0-1] the first packet from the client must be CONNECT; otherwise close, no CONNACK
    if (!connection) throw new MqttProtocolError(ReasonCode.ProtocolError, `${packet.cmd} before CONNECT`);
    return handle({ ...ctx, connection }, packet);
  };
}

/** What a batch of one connection's packets learns as it goes. */
export interface BatchState {
  /** The client's topic aliases (alias -> topic), as stored and as set in this batch. */
  readonly topicAliases: Map<number, string>;
  /** QoS 1 and 2 PUBLISHes of this batch so far (see publish.ts countUnacknowledged). */
  unacknowledged?: number;
  /** The client's QoS 2 receipts stored before this batch, once read. */
  storedQos2?: number;
  /** Subscribers by topic, read once per batch, lookups of the same turn together (see RoutingCache). */
  readonly routes: RoutingCache;
}

export function newBatchState(connection: ConnectionRecord | undefined): BatchState {
  return { routes: newRoutingCache(), topicAliases: new Map(Object.entries(connection?.topicAliases ?? {}).map(([alias, topic]) => [Number(alias), topic])) };
}

/** The connection being handled, as a recipient of deliveries. */
export function selfRecipient(connection: ConnectionRecord): Recipient {
  return {
    clientId: connection.clientId,
    connectionId: connection.connectionId,
    protocolVersion: connection.protocolVersion,
    ...(connection.maximumPacketSize !== undefined ? { maximumPacketSize: connection.maximumPacketSize } : {}),
    ...(connection.receiveMaximum !== undefined ? { receiveMaximum: connection.receiveMaximum } : {}),
    ...(connection.topicAliasMaximum !== undefined ? { topicAliasMaximum: connection.topicAliasMaximum } : {}),
  };
}

/** A packet to the connection that sent the one being handled. */
export function reply(ctx: ConnectedContext, packet: Packet): Send {
  return send(ctx.connection.connectionId, ctx.connection.protocolVersion, packet);
}

export function isV5(connection: Pick<ConnectionRecord, 'protocolVersion'>): boolean {
  return connection.protocolVersion === 5;
}

/** The client's Receive Maximum (65535 when it set none, and for 3.1.1). */
export function receiveMaximumOf(connection: Pick<ConnectionRecord, 'receiveMaximum'>): number {
  return connection.receiveMaximum ?? 65535;
}
