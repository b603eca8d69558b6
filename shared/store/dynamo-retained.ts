/**
 * Retained messages in DynamoDB (the Retained table): a tree of topic levels, see retained-index.ts.
 * A new topic writes its node and its ancestors in one transaction, each ancestor given a new
 * `touched` token; a cleared topic's node, and then each ancestor left with neither message nor
 * children, is deleted only if its token is the one read before its children were looked at, so
 * a topic written meanwhile below it keeps its ancestors.
 */
import { randomUUID } from 'node:crypto';
import type { FoundRetained, RetainedMessage, RetainedStore } from '../broker/ports';
import type { DynamoTable, Item, TransactItem } from './dynamo-table';
import { toItemMessage, toMessage } from './message-items';
import { childrenKey, levelsOf, matchingRetainedNodes, nodeId, retainedKey, type RetainedKey } from './retained-index';

export class DynamoRetainedStore implements RetainedStore {
  constructor(
    private readonly table: DynamoTable,
    private readonly now: () => number,
  ) {}

  async putRetained(message: RetainedMessage): Promise<void> {
    const levels = message.topic.split('/');
    const key = retainedKey(levels);
    if (message.payload.length === 0) {
      // [MQTT-3.3.1-6] an empty retained message removes the topic's retained message
      const cleared = await this.table.updateIf({ Key: key, UpdateExpression: 'REMOVE message', ConditionExpression: 'attribute_exists(pk)' });
      if (cleared) await this.prune(levels);
      return;
    }
    const stored = { ...toItemMessage(message), retain: true };
    // [MQTT-3.3.1-5] a new retained message replaces the topic's previous one
    const replaced = await this.table.updateIf({
      Key: key,
      UpdateExpression: 'SET message = :m',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':m': stored },
    });
    if (replaced) return;
    // A topic new to the tree, with its ancestors, in one write: a walk never misses a stored message.
    const touched = randomUUID();
    const ancestors: TransactItem[] = levels.slice(0, -1).map((_, i) => ({
      Update: {
        Key: retainedKey(levels.slice(0, i + 1)),
        UpdateExpression: 'SET createdAt = if_not_exists(createdAt, :t), touched = :touched',
        ExpressionAttributeValues: { ':t': this.now(), ':touched': touched },
      },
    }));
    const written = await this.table.transact([...ancestors, { Put: { Item: { ...key, createdAt: this.now(), touched, message: stored } } }]);
    if (!written.ok) throw new Error(`retained message for ${message.topic} not stored: the transaction was cancelled`);
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
