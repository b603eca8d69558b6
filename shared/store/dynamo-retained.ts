/**
 * Retained messages in DynamoDB (the Retained table): a tree of topic levels, see retained-index.ts.
 * A new topic writes its node and its ancestors in one transaction, each ancestor given a new
 * `touched` token; a cleared topic's node, and then each ancestor left with neither message nor
 * children, is deleted only if its token is the one read before its children were looked at, so
 * a topic written meanwhile below it keeps its ancestors. A topic's message is counted in the
 * retained topics of the user who first stored it (user-quota.ts; the counter items are in this
 * table, under keys no topic has), counted out when it is cleared.
 */
import { randomUUID } from 'node:crypto';
import type { FoundRetained, RetainedMessage, RetainedQuota, RetainedStore } from '../broker/ports';
import { afterContention, type DynamoTable, type Item, type TransactItem } from './dynamo-table';
import { toItemMessage, toMessage } from './message-items';
import { childrenKey, levelsOf, matchingRetainedNodes, nodeId, retainedKey, type RetainedKey } from './retained-index';
import { countIn, countOut, quotaKey } from './user-quota';
import type { StatsCounter } from '../broker/stats';

export class DynamoRetainedStore implements RetainedStore {
  constructor(
    private readonly table: DynamoTable,
    private readonly now: () => number,
    /** Counts topics that gain and lose a message (the $SYS retained count); in memory, no write of its own. */
    private readonly stats?: StatsCounter,
  ) {}

  async putRetained(message: RetainedMessage, quota?: RetainedQuota): Promise<'stored' | 'quota-exceeded'> {
    const levels = message.topic.split('/');
    const key = retainedKey(levels);
    if (message.payload.length === 0) {
      // [MQTT-3.3.1-6] an empty retained message removes the topic's retained message
      if (await this.clear(key)) {
        this.stats?.count('retained', -1);
        await this.prune(levels);
      }
      return 'stored';
    }
    const stored = { ...toItemMessage(message), retain: true };
    for (let attempt = 0; ; attempt++) {
      // [MQTT-3.3.1-5] a new retained message replaces the topic's previous one (whoever stored
      // it: the topic stays counted where it was first counted)
      const replaced = await this.table.updateIf({
        Key: key,
        UpdateExpression: 'SET message = :m',
        ConditionExpression: 'attribute_exists(message)',
        ExpressionAttributeValues: { ':m': stored },
      });
      if (replaced) return 'stored';
      const added = await this.addTopic(levels, stored, quota);
      if (added === 'stored') this.stats?.count('retained');
      if (added !== 'raced') return added;
      await afterContention(attempt);
    }
  }

  /**
   * A message on a topic that holds none, with its ancestors, in one write (a walk never misses a
   * stored message), counted in its publisher's retained topics if they are counted; 'raced' if
   * another message got there first (then it is a replacement).
   */
  private async addTopic(levels: readonly string[], stored: Item, quota: RetainedQuota | undefined): Promise<'stored' | 'quota-exceeded' | 'raced'> {
    const touched = randomUUID();
    const ancestors: TransactItem[] = levels.slice(0, -1).map((_, i) => ({
      Update: {
        Key: retainedKey(levels.slice(0, i + 1)),
        UpdateExpression: 'SET createdAt = if_not_exists(createdAt, :t), touched = :touched',
        ExpressionAttributeValues: { ':t': this.now(), ':touched': touched },
      },
    }));
    const counted = quota === undefined ? undefined : quotaKey('retained', quota.owner, levels.join('/'), quota.bound);
    const written = await this.table.transact([
      ...ancestors,
      { Put: { Item: { ...retainedKey(levels), createdAt: this.now(), touched, message: stored, ...(counted ? { quota: counted } : {}) }, ConditionExpression: 'attribute_not_exists(message)' } },
      ...(counted ? [countIn(quotaItemKey, counted, quota!.bound)] : []),
    ]);
    if (written.ok) return 'stored';
    if (written.failed[ancestors.length]) return 'raced';
    if (written.failed[ancestors.length + 1]) return 'quota-exceeded';
    throw new Error(`retained message for ${levels.join('/')} not stored: the transaction was cancelled`);
  }

  /** Remove a topic's message, counted out of the retained topics of whoever's it was counted under; false if it held none. */
  private async clear(key: RetainedKey): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const node = await this.table.get({ ...key });
      if (node?.message === undefined) return false;
      const counted = typeof node.quota === 'string' ? node.quota : undefined;
      const cleared = await this.table.transact([
        {
          Update: {
            Key: { ...key },
            UpdateExpression: 'REMOVE message, quota',
            ConditionExpression: counted ? 'attribute_exists(message) AND quota = :q' : 'attribute_exists(message) AND attribute_not_exists(quota)',
            ...(counted ? { ExpressionAttributeValues: { ':q': counted } } : {}),
          },
        },
        ...(counted ? [countOut(quotaItemKey, counted)] : []),
      ]);
      if (cleared.ok) return true;
      await afterContention(attempt);
    }
  }

  /** Delete the node of `levels` and then its ancestors, each while it holds no message and has no children. */
  private async prune(levels: readonly string[]): Promise<void> {
    for (let depth = levels.length; depth > 0; depth--) {
      const key = retainedKey(levels.slice(0, depth));
      const node = await this.table.get({ ...key });
      if (!node || node.message !== undefined) return;
      const children = await this.table.query({ KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': childrenKey(levels.slice(0, depth)) }, Limit: 1 });
      if (children.length > 0) return;
      const deleted = await this.table.deleteIf({
        Key: key,
        ConditionExpression: node.touched === undefined ? 'attribute_not_exists(message) AND attribute_not_exists(touched)' : 'attribute_not_exists(message) AND touched = :touched',
        ...(node.touched === undefined ? {} : { ExpressionAttributeValues: { ':touched': node.touched } }),
      });
      if (!deleted) return;
    }
  }

  async findRetained(filter: string, limit?: number): Promise<FoundRetained> {
    const { nodes, truncated } = await matchingRetainedNodes<Item>(filter, {
      nodes: async (keys) => {
        const items = await this.table.batchGet(keys.map((key) => ({ ...key })));
        return new Map(items.map((item) => [nodeId(levelsOf(item as unknown as RetainedKey)), item]));
      },
      children: async (levels, max) => {
        const items = await this.table.queryAll({ KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': childrenKey(levels) } }, max);
        return items.map((item) => ({ levels: levelsOf(item as unknown as RetainedKey), item }));
      },
    }, limit);
    const now = this.now();
    const messages = nodes.flatMap((node): RetainedMessage[] => {
      const message = node.item?.message as Item | undefined;
      if (!message) return [];
      const retained = toMessage(message);
      // [MQTT-3.3.2-5] an expired retained message is not delivered
      return retained.expiresAtMs !== undefined && retained.expiresAtMs <= now ? [] : [retained];
    });
    return { messages, truncated };
  }
}

/** The key of a counter item of the users' retained topics, in the Retained table (see user-quota.ts). */
function quotaItemKey(key: string): Item {
  return { pk: key, sk: 'quota' };
}
