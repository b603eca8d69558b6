/**
 * Subscriptions in DynamoDB: each client's own list in its session partition (`sub#<filter as
 * sent>`), and the routing index that PUBLISH reads (the Subscriptions table: a subscription per
 * filter and client, and the trie of wildcard filters, see subscription-index.ts).
 */
import type { Subscription, SubscriptionStore } from '../broker/ports';
import { hasWildcard } from '../protocol/topic';
import type { DynamoTable, Item } from './dynamo-table';
import { SUB_PREFIX } from './session-items';
import { filterKey, filterPrefixes, FILTER_PREFIX, matchingWildcardFilters, nodeKey, NODE_PREFIX, NODE_SORT_KEY, type TrieNode } from './subscription-index';

const CLIENT_ROUTE = 'c|';
const SHARED_ROUTE = 's|';
const SHARE_PREFIX = '$share/';

export class DynamoSubscriptionStore implements SubscriptionStore {
  constructor(
    private readonly sessions: DynamoTable,
    private readonly routes: DynamoTable,
  ) {}

  async subscribe(clientId: string, subscriptions: readonly Subscription[]): Promise<boolean[]> {
    // A filter twice in one SUBSCRIBE: the later one replaces the earlier, as across packets.
    const byFilter = [...new Map(subscriptions.map((s) => [sentFilter(s), s])).values()];
    const existed = await Promise.all(byFilter.map((subscription) => this.addRoute(subscription)));
    await this.sessions.batchWrite(byFilter.map((s) => ({ PutRequest: { Item: { ...s, clientId, sk: SUB_PREFIX + sentFilter(s) } } })));
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
    await this.sessions.batchDelete(unique.map((filter) => ({ clientId, sk: SUB_PREFIX + filter })));
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

  /**
   * Strongly consistent throughout, so a subscription whose SUBACK went out is always found.
   * Round trips: one per topic level (the trie walk, exact filters read alongside the first),
   * then one Query per matching wildcard filter, in parallel.
   */
  async findSubscriptions(topic: string): Promise<Subscription[]> {
    const [exact, wildcardFilters] = await Promise.all([
      this.subscriptionsOf(topic),
      matchingWildcardFilters(topic, (prefixes) => this.readNodes(prefixes)),
    ]);
    const wildcard = await Promise.all(wildcardFilters.map((filter) => this.subscriptionsOf(filter)));
    return exact.concat(...wildcard);
  }

  /**
   * Take a client's subscriptions (filters as sent) out of the routing index, leaving its own
   * list to the caller: for each, whether it was there. Also used as a session ends.
   */
  removeRoutes(clientId: string, filters: readonly string[]): Promise<boolean[]> {
    return Promise.all(filters.map((filter) => this.removeRoute(clientId, parseFilter(filter))));
  }

  private async readNodes(prefixes: readonly string[]): Promise<Map<string, TrieNode>> {
    const items = await this.routes.batchGet(prefixes.map((prefix) => ({ pk: nodeKey(prefix), sk: NODE_SORT_KEY })));
    const nodes = new Map<string, TrieNode>();
    for (const item of items) {
      const refs = Number(item.refs ?? 0);
      if (refs > 0) nodes.set((item.pk as string).slice(NODE_PREFIX.length), { refs, ends: Number(item.ends ?? 0) });
    }
    return nodes;
  }

  private async subscriptionsOf(filter: string): Promise<Subscription[]> {
    const items = await this.routes.queryAll({ KeyConditionExpression: 'pk = :f', ExpressionAttributeValues: { ':f': filterKey(filter) } });
    return items.map(toSubscription);
  }

  /** Trie nodes are counted up first, so a crash between the two writes over-counts (harmless) rather than hides. */
  private async addRoute(subscription: Subscription): Promise<boolean> {
    const { clientId, filter, shareGroup, ...options } = subscription;
    const wildcard = hasWildcard(filter);
    if (wildcard) await this.countNodes(filter, 1);
    const old = await this.routes.put({ Item: { pk: filterKey(filter), sk: routeSortKey(clientId, shareGroup), ...options }, ReturnValues: 'ALL_OLD' });
    // A replaced subscription was already counted.
    if (wildcard && old) await this.countNodes(filter, -1);
    return old !== undefined;
  }

  private async removeRoute(clientId: string, { filter, shareGroup }: ParsedFilter): Promise<boolean> {
    const old = await this.routes.delete({ Key: { pk: filterKey(filter), sk: routeSortKey(clientId, shareGroup) }, ReturnValues: 'ALL_OLD' });
    if (!old) return false;
    if (hasWildcard(filter)) await this.countNodes(filter, -1);
    return true;
  }

  private async countNodes(filter: string, delta: 1 | -1): Promise<void> {
    const prefixes = filterPrefixes(filter);
    await Promise.all(
      prefixes.map(async (prefix, i) => {
        const last = i === prefixes.length - 1;
        const counted = await this.routes.update({
          Key: { pk: nodeKey(prefix), sk: NODE_SORT_KEY },
          UpdateExpression: last ? 'ADD refs :d, ends :d' : 'ADD refs :d',
          ExpressionAttributeValues: { ':d': delta },
          ReturnValues: 'UPDATED_NEW',
        });
        // Unless a subscribe counted it up again meanwhile (then the condition fails and the node stays).
        if (delta < 0 && Number(counted?.refs ?? 0) <= 0) {
          await this.routes.deleteIf({ Key: { pk: nodeKey(prefix), sk: NODE_SORT_KEY }, ConditionExpression: 'refs <= :zero', ExpressionAttributeValues: { ':zero': 0 } });
        }
      }),
    );
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
