/** The doors as the broker sees them: bytes to a connection, closing it, probing it. */
import type { ConnectionRecord } from './connections';

export type DeliveryResult = 'delivered' | 'gone';

/** Bytes to a connection and closing it, through an `@connections` API (either door). */
export interface ConnectionGateway {
  send(connectionId: string, data: Buffer): Promise<DeliveryResult>;
  /** Bytes to many connections: one request per listener task, one call per API Gateway connection. */
  sendMany(deliveries: ReadonlyArray<readonly [connectionId: string, data: Buffer]>): Promise<Map<string, DeliveryResult>>;
  close(connectionId: string): Promise<void>;
}

/** Whether a connection still exists on its door (`GET @connections/{id}`), for the sweeper. */
export interface ConnectionProbe {
  /** 'gone': the door no longer knows it, or (listener) its task is unreachable. */
  probe(connectionId: string): Promise<'connected' | 'gone'>;
}

/** Every connection the broker knows, page by page: the sweeper's Scan, never a client path. */
export interface ConnectionDirectory {
  scanConnections(): AsyncIterable<readonly ConnectionRecord[]>;
}
