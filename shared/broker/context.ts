import { encodePacket, type Packet } from '../protocol/codec';
import type { Outbox } from './outbox';
import type { BrokerStore, ConnectionGateway, ConnectionRecord, Logger } from './ports';

export interface BrokerConfig {
  /** Largest packet the broker accepts, announced to 5.0 clients in CONNACK. */
  readonly maximumPacketSize: number;
}

export const defaultBrokerConfig: BrokerConfig = {
  maximumPacketSize: 256 * 1024,
};

/** Everything a handler may touch, built once per process by an entry point. */
export interface BrokerDeps {
  readonly store: BrokerStore;
  readonly gateway: ConnectionGateway;
  readonly log: Logger;
  readonly config: BrokerConfig;
  readonly now: () => number;
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
