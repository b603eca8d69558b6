/**
 * The subscribers of the topics a batch publishes to, looked up together: every topic asked for
 * before the next turn of the event loop (a run of PUBLISHes routed with Promise.all, the packets
 * of many connections handled at once, whichever cache each asks through) is looked up with ONE
 * findSubscriptionsForTopics, then the sessions of all their subscribers with ONE getSessions. A
 * topic asked for again through the same cache reuses its lookup.
 *
 * Freshness: every packet of a batch had arrived before the batch's first read, so a read made for
 * an earlier packet is as fresh for a later one: a subscriber whose SUBACK went out before a
 * PUBLISH was sent is in it. A SUBSCRIBE/UNSUBSCRIBE handled in the batch clears the cache, so a
 * later PUBLISH of the batch reads again.
 */
import type { BrokerStore, SessionRecord, Subscription } from './ports';

/** A topic's subscriptions and their sessions, as read once for a batch. */
export interface Routing {
  readonly subscriptions: readonly Subscription[];
  /** The sessions of (at least) the subscribers of `subscriptions` that have one. */
  readonly sessions: ReadonlyMap<string, SessionRecord>;
}

interface Waiting {
  readonly resolve: (routing: Routing) => void;
  readonly reject: (error: unknown) => void;
}

/** Topics asked for in this turn of the event loop, by store, not yet looked up: shared by every cache. */
const pendingByStore = new WeakMap<BrokerStore, Map<string, Waiting[]>>();

export class RoutingCache {
  private lookups = new Map<string, Promise<Routing>>();

  /** The topic's subscribers and their sessions, read with every other topic asked for in the same turn. */
  get(store: BrokerStore, topic: string): Promise<Routing> {
    const known = this.lookups.get(topic);
    if (known) return known;
    const lookups = this.lookups;
    const lookup = join(store, topic);
    lookups.set(topic, lookup);
    // A failed lookup is not kept: a later packet of the batch reads again.
    lookup.catch(() => {
      if (lookups.get(topic) === lookup) lookups.delete(topic);
    });
    return lookup;
  }

  /**
   * Start the lookups of topics a batch is about to publish to (its packets had all arrived), so
   * they are read together even when the batch's PUBLISHes are handled one after another.
   */
  prefetch(store: BrokerStore, topics: Iterable<string>): void {
    for (const topic of topics) {
      // Failures surface to whoever asks for the topic later, and are not kept.
      this.get(store, topic).catch(() => undefined);
    }
  }

  /** Forget every lookup: the next ones read again (after the batch's own SUBSCRIBE/UNSUBSCRIBE). */
  clear(): void {
    this.lookups = new Map();
  }
}

export function newRoutingCache(): RoutingCache {
  return new RoutingCache();
}

/**
 * Joins the lookup that starts at the next turn of the event loop (setImmediate): it reads after
 * every caller asked, so it is as fresh for each of them as a read of its own.
 */
function join(store: BrokerStore, topic: string): Promise<Routing> {
  let pending = pendingByStore.get(store);
  if (!pending) {
    const batch = new Map<string, Waiting[]>();
    pendingByStore.set(store, batch);
    setImmediate(() => {
      pendingByStore.delete(store);
      void lookUp(store, batch);
    });
    pending = batch;
  }
  const waiting = pending;
  return new Promise<Routing>((resolve, reject) => waiting.set(topic, [...(waiting.get(topic) ?? []), { resolve, reject }]));
}

async function lookUp(store: BrokerStore, batch: ReadonlyMap<string, readonly Waiting[]>): Promise<void> {
  try {
    const found = await store.subscriptions.findSubscriptionsForTopics([...batch.keys()]);
    const clientIds = [...new Set([...found.values()].flat().map((s) => s.clientId))];
    const sessions = clientIds.length > 0 ? await store.sessions.getSessions(clientIds) : new Map<string, SessionRecord>();
    for (const [topic, waiting] of batch) for (const { resolve } of waiting) resolve({ subscriptions: found.get(topic) ?? [], sessions });
  } catch (error) {
    for (const waiting of batch.values()) for (const { reject } of waiting) reject(error);
  }
}
