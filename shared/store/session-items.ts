/**
 * The Sessions table's key scheme (see tables.ts), shared by the adapters whose items live in a
 * client's partition: the session item, subscriptions, messages in flight and queued, QoS 2
 * receipts, exactly-once marks and the delayed will. Also the rules they read session items by.
 */
import type { DynamoTable, Item } from './dynamo-table';
import { TIMER_INDEX } from './tables';

export const SESSION_SK = 'session';
export const SUB_PREFIX = 'sub#';
export const OUT_PREFIX = 'out#';
export const IN_PREFIX = 'in#';
export const QUEUE_PREFIX = 'q#';
export const ONCE_PREFIX = 'd#';
export const WILL_SK = 'will';
export const MAX_IN_FLIGHT_IDS = 65535;
/** How long TTL waits past an item's end before deleting it: a backup, the timers act first. */
export const TTL_GRACE_SECONDS = 86_400;

export function sessionKey(clientId: string): Item {
  return { clientId, sk: SESSION_SK };
}

export function outKey(packetId: number): string {
  return OUT_PREFIX + String(packetId).padStart(5, '0');
}

/** TTL deletes late (and sessions end at their timer, before TTL): an item past its expiry is treated as absent. */
export function isExpired(item: Item, nowMs: number): boolean {
  if (item.timer === 'expiry' && typeof item.timerAt === 'number') return item.timerAt <= nowMs;
  return typeof item.expiresAt === 'number' && item.expiresAt * 1000 <= nowMs;
}

/**
 * A client that accepts the protocol's whole 65535 needs no count of messages in flight (packet
 * ids run out no sooner): one write less per delivery's acknowledgement.
 */
export function countsInFlight(receiveMaximum: number): boolean {
  return receiveMaximum < MAX_IN_FLIGHT_IDS;
}

/** Packet identifiers are 1..65535 [MQTT-2.2.1-3]; the session's counter wraps around them. */
export function packetIdOf(counter: number): number {
  return ((counter - 1) % MAX_IN_FLIGHT_IDS) + 1;
}

/** Sort keys and receipt ids: sortable and unique within the process (epoch ms, then a counter, then this process). */
export class SequenceGenerator {
  private last = { ms: 0, n: 0 };
  private readonly instance = Math.random().toString(36).slice(2, 8);

  constructor(private readonly now: () => number) {}

  next(): string {
    const now = this.now();
    this.last = now > this.last.ms ? { ms: now, n: 0 } : { ms: this.last.ms, n: this.last.n + 1 };
    return `${String(this.last.ms).padStart(15, '0')}#${String(this.last.n).padStart(6, '0')}#${this.instance}`;
  }
}

/** Items of the timer index due by `now` (the index is eventually consistent: callers claim each item). */
export function dueTimers(sessions: DynamoTable, timer: 'expiry' | 'will', now: number, limit: number): Promise<Item[]> {
  return sessions.query({
    IndexName: TIMER_INDEX,
    KeyConditionExpression: '#timer = :t AND timerAt <= :now',
    ExpressionAttributeNames: { '#timer': 'timer' },
    ExpressionAttributeValues: { ':t': timer, ':now': now },
    Limit: limit,
  });
}
