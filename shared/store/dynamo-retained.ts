/** Retained messages in DynamoDB (the Retained table): a tree of topic levels, see retained-index.ts. */
import type { FoundRetained, RetainedMessage, RetainedStore } from '../broker/ports';
import type { DynamoTable, Item } from './dynamo-table';
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
      await this.table.updateIf({ Key: key, UpdateExpression: 'REMOVE message', ConditionExpression: 'attribute_exists(pk)' });
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
    // A topic new to the tree: its ancestors first, so a walk never misses a stored message.
    await Promise.all(
      levels.slice(0, -1).map((_, i) =>
        this.table.update({
          Key: retainedKey(levels.slice(0, i + 1)),
          UpdateExpression: 'SET createdAt = if_not_exists(createdAt, :t)',
          ExpressionAttributeValues: { ':t': this.now() },
        }),
      ),
    );
    await this.table.put({ Item: { ...key, createdAt: this.now(), message: stored } });
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
