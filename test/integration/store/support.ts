/** What the store's contract suites share: the broker's leases, and the steps of a CONNECT as the store sees them. */
import { randomBytes } from 'node:crypto';
import { uniqueClientId } from '../store-fixture';
import { drainAfterQueueing, QUEUE_CLAIM_BATCH } from '../../../shared/broker/delivery-policy';
import { LEASES } from '../../../shared/broker/leases';
import { connectHold, type BrokerStore, type EnqueueResult, type OpenSessionRequest, type QueuedMessage } from '../../../shared/broker/ports';

/** The lease of holds and claims, as the broker passes it. */
export const HOLD_MS = LEASES.deliveryHoldMs;
/** Queued messages claimed per round, as the broker asks. */
export const CLAIM_BATCH = QUEUE_CLAIM_BATCH;
export const NEVER_EXPIRES = 0xffffffff;
export const HOUR_MS = 3_600_000;
/** What a client that sent no 5.0 limits accepts. */
export const limits = { receiveMaximum: 65535, topicAliasMaximum: 0 };

export function connectionId(): string {
  return `conn-${randomBytes(6).toString('hex')}`;
}

/** What a CONNECT does to the session: claim it, and once CONNACK is out let deliveries start. */
export async function connect(store: BrokerStore, request: OpenSessionRequest) {
  const opened = await store.sessions.openSession(request);
  await store.deliveries.releaseHold(request.clientId, request.connectionId, connectHold(request.connectionId), request.receiveMaximum);
  return opened;
}

/** A hold of the broker's lease. */
export function hold(token: string) {
  return { token, leaseMs: HOLD_MS };
}

/** What enqueue answered, and the broker's decision from it: drain now, on which connection (shared/broker/delivery-policy.ts). */
export function decided(result: EnqueueResult, now = Date.now()): { queued: boolean; drainOn?: string } {
  const drainOn = result.queued ? drainAfterQueueing(result.session, now) : undefined;
  return { queued: result.queued, ...(drainOn ? { drainOn } : {}) };
}

export function message(clientId: string, n: number, qos: 1 | 2 = 1): QueuedMessage {
  return { clientId, topic: `${clientId}/t`, payload: Buffer.from(`m${n}`), qos, retain: false };
}

/** Messages put in flight to the client on `conn` (one call); their packet ids. */
export async function inFlight(store: BrokerStore, conn: string, messages: readonly QueuedMessage[], receiveMaximum = 65535): Promise<number[]> {
  const starts = await store.deliveries.startDeliveries(messages[0]!.clientId, conn, receiveMaximum, messages);
  return starts.map((start) => (typeof start === 'object' ? start.packetId : Number.NaN));
}

export const payloads = (messages: ReadonlyArray<{ payload: Buffer }>) => messages.map((m) => m.payload.toString());

/** A client connected on a new connection, with one exact and one wildcard subscription under its own topic root. */
export async function subscribedClient(store: BrokerStore): Promise<{ clientId: string; conn: string; topic: string }> {
  const clientId = uniqueClientId('sess');
  const conn = connectionId();
  await connect(store, { clientId, connectionId: conn, protocolVersion: 5, cleanStart: true, holdMs: HOLD_MS, ...limits });
  await store.subscriptions.subscribe(clientId, [
    { clientId, filter: `${clientId}/status`, qos: 1 },
    { clientId, filter: `${clientId}/+`, qos: 2 },
  ]);
  return { clientId, conn, topic: `${clientId}/status` };
}
