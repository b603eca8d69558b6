import { encodePacket, type Packet } from '../protocol/codec';
import type { Outbox } from './outbox';
import type { BrokerSecurity } from '../security/broker-security';
import type { BrokerStore, ConnectionGateway, ConnectionRecord, Logger, SecurityStore } from './ports';

export interface BrokerConfig {
  /** Largest packet the broker accepts, announced to 5.0 clients in CONNACK. */
  readonly maximumPacketSize: number;
  /** Longest topic name or filter, in UTF-8 bytes (they become DynamoDB keys, which hold 2,048). */
  readonly maxTopicLength: number;
  /** Most levels in a topic name or filter. */
  readonly maxTopicLevels: number;
  readonly maxSubscriptionsPerClient: number;
  /** Messages in flight to or from one client at QoS 1 and 2 (the Receive Maximum). */
  readonly maxInflightMessages: number;
  /** Longest client identifier, in UTF-8 bytes (it becomes a DynamoDB key). */
  readonly maxClientIdLength: number;
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
  maxTopicLength: 1024,
  maxTopicLevels: 32,
  maxSubscriptionsPerClient: 100,
  maxInflightMessages: 100,
  maxClientIdLength: 256,
  connectRate: { count: 20, perSeconds: 60 },
};

/** Everything a handler may touch, built once per process by an entry point. */
export interface BrokerDeps {
  readonly store: BrokerStore;
  readonly gateway: ConnectionGateway;
  readonly log: Logger;
  readonly config: BrokerConfig;
  readonly now: () => number;
  /** Authentication and topic access (shared/security/). */
  readonly security: BrokerSecurity;
  /** Users, door identities and rate counters. */
  readonly securityStore: SecurityStore;
}

/** One packet from one connected client, and where its answers go. */
export interface PacketContext {
  readonly deps: BrokerDeps;
  readonly connection: ConnectionRecord;
  readonly outbox: Outbox;
}

/** Queue a packet to the connection that sent the one being handled. */
export function reply(ctx: PacketContext, packet: Packet): void {
  ctx.outbox.send(ctx.connection.connectionId, encodePacket(packet, ctx.connection.protocolVersion));
}

export function isV5(connection: Pick<ConnectionRecord, 'protocolVersion'>): boolean {
  return connection.protocolVersion === 5;
}
