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
  /** The same, with when the client last sent anything, where the door says (API Gateway's LastActiveAt, epoch ms). */
  probeActivity(connectionId: string): Promise<{ readonly state: 'connected' | 'gone'; readonly lastActiveAt?: number }>;
  /** Whether anything answers at a listener task's delivery endpoint: one request for all its connections. */
  probeTask(endpoint: string): Promise<'alive' | 'gone'>;
}

/** A connection as the sweeper's index holds it: enough to check it, not the whole record. */
export type OwnedConnection = Pick<ConnectionRecord, 'connectionId' | 'clientId' | 'protocolVersion' | 'tokenExpiresAt'> & Partial<Pick<ConnectionRecord, 'keepalive'>>;

/** A listener task that registered (and heartbeats), by its delivery endpoint. */
export interface ListenerTask {
  readonly endpoint: string;
  /** Its last heartbeat (epoch ms). */
  readonly heartbeatAt: number;
}

/** Where an incremental pass over some owners' connections stopped: resumed after this. */
export interface SweepCursor {
  readonly owner: string;
  readonly after: string;
}

/** What one sweep leaves for the next: where each incremental pass stopped. */
export interface SweepState {
  readonly browsers?: SweepCursor;
  readonly devices?: SweepCursor;
}

/**
 * The sweeper's view of the connections: by owner (API Gateway's connections in a few shards;
 * each listener task's in a few of its own), so that a dead task's connections are found by task
 * and the rest page by page; the registry of listener tasks; and the sweeper's lease. Scheduled
 * jobs only (and the listener's heartbeat); never a client packet's path.
 */
export interface ConnectionDirectory {
  /** A listener task says it is alive (registering it the first time). */
  recordHeartbeat(endpoint: string, now: number): Promise<void>;
  listTasks(): Promise<ListenerTask[]>;
  forgetTask(endpoint: string): Promise<void>;
  /** The owner keys of API Gateway's connections, in order. */
  browserOwners(): string[];
  /** The owner keys of a listener task's connections, in order. */
  taskOwners(endpoint: string): string[];
  /** Up to `limit` connections of one owner after `after` (connection id order); eventually consistent. */
  owned(owner: string, after: string | undefined, limit: number): Promise<OwnedConnection[]>;
  /** One sweep at a time: the state the last one left, or undefined while another holds the lease. */
  claimSweep(holder: string, now: number, leaseMs: number): Promise<SweepState | undefined>;
  /** The sweep is over: its state kept for the next, the lease let go. */
  releaseSweep(holder: string, state: SweepState): Promise<void>;
}
