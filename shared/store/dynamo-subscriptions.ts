/**
 * Subscriptions in DynamoDB: each client's own list in its session partition (`sub#<filter as
 * sent>`), and the routing index that PUBLISH reads (the Subscriptions table: a subscription per
 * filter and client, a marker per filter, and the shapes of the wildcard filters, see
 * subscription-index.ts).
 */
import type { CountedSubscriptions, Subscription, SubscriptionStore } from '../broker/ports';
import { hasWildcard } from '../protocol/topic';
import { afterContention, type DynamoTable, type Item } from './dynamo-table';
import { countedKeys, countOutUpdate, quotaInSessions, quotaKey, shardBound } from './user-quota';
import { SUB_PREFIX } from './session-items';
import {
  candidateFilters,
  filterKey,
  FILTER_PREFIX,
  groupOf,
  groupsForTopic,
  markerKey,
  MARKER_PREFIX,
  MARKER_SORT_KEY,
  SHAPE_ATTRIBUTE_PREFIX,
  SHAPE_COPIES,
  SHAPE_SORT_KEY,
  shapeKey,
  shapeOf,
  shapesIn,
} from './subscription-index';

import type { StatsCounter } from '../broker/stats';
const CLIENT_ROUTE = 'c|';
const SHARED_ROUTE = 's|';
const SHARE_PREFIX = '$share/';
/** Keys of one BatchGetItem call. */
const BATCH_GET_KEYS = 100;

export class DynamoSubscriptionStore implements SubscriptionStore {
  constructor(
    private readonly sessions: DynamoTable,
    private readonly routes: DynamoTable,
    /** Copies of each group's shape item: must stay the same for the life of the table. */
    private readonly shapeCopies: number = SHAPE_COPIES,
    /** Counts routes made and removed (the $SYS subscription count); in memory, no write of its own. */
    private readonly stats?: StatsCounter,
  ) {}

  async countNewSubscriptions(owner: string, clientId: string, count: number, bound: number): Promise<CountedSubscriptions> {
    const key = quotaKey('subscriptions', owner, clientId, bound);
    const perShard = shardBound(bound);
    let wanted = count;
    for (let attempt = 0; wanted > 0; attempt++) {
      const counted = await this.sessions.updateOrOld({
        Key: quotaInSessions(key),
        UpdateExpression: 'ADD #n :n',
        ConditionExpression: 'attribute_not_exists(#n) OR #n <= :room',
        ExpressionAttributeNames: { '#n': 'count' },
        ExpressionAttributeValues: { ':n': wanted, ':room': perShard - wanted },
      });
      if (counted.ok) return { admitted: wanted, countedUnder: key };
      // Fewer fit: as many as there is room for (the count as it failed), again.
      const room = perShard - Number(counted.old?.count ?? 0);
      wanted = Math.min(wanted - 1, Math.max(0, room));
      if (attempt > 0) await afterContention(attempt);
    }
    return { admitted: 0, countedUnder: key };
  }

  async subscribe(clientId: string, subscriptions: readonly Subscription[], countedUnder?: string): Promise<boolean[]> {
    // A filter twice in one SUBSCRIBE: the later one replaces the earlier, as across packets.
    const byFilter = [...new Map(subscriptions.map((s) => [sentFilter(s), s])).values()];
    const existed = await Promise.all(byFilter.map((subscription) => this.addRoute(subscription)));
    this.stats?.count('subscriptions', existed.filter((found) => !found).length);
    // Each carries the key of the count it is in (as `quota`), to be counted out there when it goes.
    await this.sessions.batchWrite(
      byFilter.map(({ countedUnder: stored, ...s }) => {
        const quota = countedUnder ?? stored;
        return { PutRequest: { Item: { ...s, clientId, sk: SUB_PREFIX + sentFilter(s), ...(quota === undefined ? {} : { quota }) } } };
      }),
    );
    const existedBy = new Map(byFilter.map((s, i) => [sentFilter(s), existed[i]!]));
    // The first mention of a filter tells whether it existed; a repeat replaces the one just made.
    const seen = new Set<string>();
    return subscriptions.map((s) => {
      const key = sentFilter(s);
      const first = !seen.has(key);
      seen.add(key);
      return first ? existedBy.get(key)! : true;
    });
  }

  async unsubscribe(clientId: string, filters: readonly string[]): Promise<boolean[]> {
    const unique = [...new Set(filters)];
    const removed = await this.removeRoutes(clientId, unique);
    const keys = unique.map((filter) => ({ clientId, sk: SUB_PREFIX + filter }));
    const counted = countedKeys(await this.sessions.batchGet(keys));
    await this.sessions.batchDelete(keys);
    // Out of their owner's count once they are gone.
    await Promise.all([...counted].map(([key, n]) => this.sessions.update(countOutUpdate(quotaInSessions, key, n))));
    // A filter named twice existed for the first mention only.
    const existed = new Map(unique.map((filter, i) => [filter, removed[i]!]));
    return filters.map((filter) => {
      const found = existed.get(filter)!;
      existed.set(filter, false);
      return found;
    });
  }

  async subscriptionFilters(clientId: string): Promise<string[]> {
    const items = await this.sessions.queryAll({
      KeyConditionExpression: 'clientId = :c AND begins_with(sk, :s)',
      ExpressionAttributeValues: { ':c': clientId, ':s': SUB_PREFIX },
      ProjectionExpression: 'sk',
    });
    return items.map((item) => (item.sk as string).slice(SUB_PREFIX.length));
  }

  async clientSubscriptions(clientId: string): Promise<Subscription[]> {
    const items = await this.sessions.queryAll({
      KeyConditionExpression: 'clientId = :c AND begins_with(sk, :s)',
      ExpressionAttributeValues: { ':c': clientId, ':s': SUB_PREFIX },
    });
    return items.map(({ sk: _sk, quota, ...subscription }) => ({ ...(subscription as unknown as Subscription), ...(typeof quota === 'string' ? { countedUnder: quota } : {}) }));
  }

  /** Every subscription matching the topic: a lookup of one topic (see findSubscriptionsForTopics). */
  async findSubscriptions(topic: string): Promise<Subscription[]> {
    return (await this.findSubscriptionsForTopics([topic])).get(topic) ?? [];
  }

  /**
   * Strongly consistent throughout, so a subscription whose SUBACK went out is always found.
   * Three rounds, whatever the topics' depth or number: one BatchGetItem of the shape items of
   * the topics' groups (one random copy each); one BatchGetItem per 100 candidate filters'
   * markers, in parallel; one Query per candidate filter that has subscribers, in parallel, each
   * filter once for all the topics it matches.
   */
  async findSubscriptionsForTopics(topics: readonly string[]): Promise<Map<string, Subscription[]>> {
    const unique = [...new Set(topics)];
    const shapes = await this.readShapes([...new Set(unique.flatMap(groupsForTopic))]);
    const candidates = new Map(unique.map((topic) => [topic, candidateFilters(topic, shapes)]));
    const existing = await this.existingFilters([...new Set([...candidates.values()].flat())]);
    const subscribers = new Map(await Promise.all([...existing].map(async (filter) => [filter, await this.subscriptionsOf(filter)] as const)));
    return new Map(unique.map((topic) => [topic, candidates.get(topic)!.flatMap((filter) => subscribers.get(filter) ?? [])]));
  }

  /**
   * Take a client's subscriptions (filters as sent) out of the routing index, leaving its own
   * list to the caller: for each, whether it was there. Also used as a session ends.
   */
  async removeRoutes(clientId: string, filters: readonly string[]): Promise<boolean[]> {
    const removed = await Promise.all(filters.map((filter) => this.removeRoute(clientId, parseFilter(filter))));
    this.stats?.count('subscriptions', -removed.filter(Boolean).length);
    return removed;
  }

  /** The shapes in use in each group, from one copy of each group's item picked at random: one call. */
  private async readShapes(groups: readonly string[]): Promise<Map<string, string[]>> {
    const keys = groups.map((group) => ({ pk: shapeKey(group, Math.floor(Math.random() * this.shapeCopies)), sk: SHAPE_SORT_KEY }));
    const byKey = new Map(keys.map((key, i) => [key.pk, groups[i]!]));
    const shapes = new Map<string, string[]>();
    for (const item of await this.routes.batchGet(keys)) shapes.set(byKey.get(item.pk as string)!, shapesIn(item));
    return shapes;
  }

  /** The filters among these that have subscribers (their marker counts more than zero): 100 per call, in parallel. */
  private async existingFilters(filters: readonly string[]): Promise<Set<string>> {
    const chunks: string[][] = [];
    for (let i = 0; i < filters.length; i += BATCH_GET_KEYS) chunks.push(filters.slice(i, i + BATCH_GET_KEYS));
    const found = await Promise.all(chunks.map((chunk) => this.routes.batchGet(chunk.map((filter) => ({ pk: markerKey(filter), sk: MARKER_SORT_KEY })))));
    return new Set(found.flat().flatMap((item) => (Number(item.refs ?? 0) > 0 ? [(item.pk as string).slice(MARKER_PREFIX.length)] : [])));
  }

  private async subscriptionsOf(filter: string): Promise<Subscription[]> {
    const items = await this.routes.queryAll({ KeyConditionExpression: 'pk = :f', ExpressionAttributeValues: { ':f': filterKey(filter) } });
    return items.map(toSubscription);
  }

  /**
   * The marker (and, for a wildcard filter, its shape in every copy) is counted up first, so a
   * crash between the writes over-counts (an extra read, harmless) rather than hides a subscriber.
   */
  private async addRoute(subscription: Subscription): Promise<boolean> {
    const { clientId, filter, shareGroup, countedUnder: _counted, ...options } = subscription;
    await this.count(filter, 1);
    const old = await this.routes.put({ Item: { pk: filterKey(filter), sk: routeSortKey(clientId, shareGroup), ...options }, ReturnValues: 'ALL_OLD' });
    // A replaced subscription was already counted.
    if (old) await this.count(filter, -1);
    return old !== undefined;
  }

  private async removeRoute(clientId: string, { filter, shareGroup }: ParsedFilter): Promise<boolean> {
    const old = await this.routes.delete({ Key: { pk: filterKey(filter), sk: routeSortKey(clientId, shareGroup) }, ReturnValues: 'ALL_OLD' });
    if (!old) return false;
    await this.count(filter, -1);
    return true;
  }

  /** One subscription more or less to a filter: its marker, and its shape in every copy of its group's item. */
  private async count(filter: string, delta: 1 | -1): Promise<void> {
    const shape = hasWildcard(filter) ? SHAPE_ATTRIBUTE_PREFIX + shapeOf(filter) : undefined;
    const copies = shape === undefined ? [] : Array.from({ length: this.shapeCopies }, (_, copy) => shapeKey(groupOf(filter), copy));
    await Promise.all([
      this.countMarker(filter, delta),
      ...copies.map((pk) => this.countShape({ pk, sk: SHAPE_SORT_KEY }, shape!, delta)),
    ]);
  }

  private async countMarker(filter: string, delta: 1 | -1): Promise<void> {
    const Key = { pk: markerKey(filter), sk: MARKER_SORT_KEY };
    const counted = await this.routes.update({ Key, UpdateExpression: 'ADD refs :d', ExpressionAttributeValues: { ':d': delta }, ReturnValues: 'UPDATED_NEW' });
    // Unless a subscribe counted it up again meanwhile (then the condition fails and the marker stays).
    if (delta < 0 && Number(counted?.refs ?? 0) <= 0) {
      await this.routes.deleteIf({ Key, ConditionExpression: 'refs <= :zero', ExpressionAttributeValues: { ':zero': 0 } });
    }
  }

  private async countShape(Key: Item, attribute: string, delta: 1 | -1): Promise<void> {
    const names = { '#s': attribute };
    const counted = await this.routes.update({
      Key,
      UpdateExpression: 'ADD #s :d',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: { ':d': delta },
      ReturnValues: 'UPDATED_NEW',
    });
    if (delta < 0 && Number(counted?.[attribute] ?? 0) <= 0) {
      await this.routes.updateIf({ Key, UpdateExpression: 'REMOVE #s', ConditionExpression: '#s <= :zero', ExpressionAttributeNames: names, ExpressionAttributeValues: { ':zero': 0 } });
    }
  }
}

function toSubscription(item: Item): Subscription {
  const { pk, sk, ...options } = item;
  const route = sk as string;
  const filter = (pk as string).slice(FILTER_PREFIX.length);
  const base = options as Omit<Subscription, 'clientId' | 'filter'>;
  if (route.startsWith(CLIENT_ROUTE)) return { ...base, clientId: route.slice(CLIENT_ROUTE.length), filter };
  // `s|<share name>/<client id>`: a share name never contains '/'
  const rest = route.slice(SHARED_ROUTE.length);
  const slash = rest.indexOf('/');
  return { ...base, clientId: rest.slice(slash + 1), filter, shareGroup: rest.slice(0, slash) };
}

function routeSortKey(clientId: string, shareGroup: string | undefined): string {
  return shareGroup === undefined ? CLIENT_ROUTE + clientId : `${SHARED_ROUTE}${shareGroup}/${clientId}`;
}

interface ParsedFilter {
  readonly filter: string;
  readonly shareGroup?: string;
}

/** `$share/<group>/<filter>` -> its parts; any other filter as it is. */
function parseFilter(sent: string): ParsedFilter {
  if (!sent.startsWith(SHARE_PREFIX)) return { filter: sent };
  const rest = sent.slice(SHARE_PREFIX.length);
  const slash = rest.indexOf('/');
  return { shareGroup: rest.slice(0, slash), filter: rest.slice(slash + 1) };
}

function sentFilter(subscription: Subscription): string {
  return subscription.shareGroup === undefined ? subscription.filter : `${SHARE_PREFIX}${subscription.shareGroup}/${subscription.filter}`;
}
