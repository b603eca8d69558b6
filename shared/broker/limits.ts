/**
 * The broker's resource limits, each a small check the handlers call (configured in
 * BrokerConfig). Counters that must outlive one invocation live in the Security table.
 */
import { createHash } from 'node:crypto';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import type { BrokerConfig, BrokerDeps, ConnectedContext, RateLimit } from './context';
import type { ConnectionRecord } from './ports';

const PUBLISH_TYPE = 3;

/** Topic names and filters longer or deeper than configured: the reason code, or undefined. */
export function topicOverLimit(config: BrokerConfig, topic: string, code: number): number | undefined {
  if (Buffer.byteLength(topic) > config.maxTopicLength) return code;
  if (topic.split('/').length > config.maxTopicLevels) return code;
  return undefined;
}

/** [MQTT-3.1.3-5] the server may refuse client identifiers; a long one would not fit a DynamoDB key. */
export function clientIdOverLimit(config: BrokerConfig, clientId: string): boolean {
  return Buffer.byteLength(clientId) > config.maxClientIdLength;
}

/** The fixed window `limit` counts `subject` in at `nowMs`: its counter's key and the window's start (epoch seconds). */
export function rateWindow(nowMs: number, kind: string, subject: string, limit: RateLimit): { key: string; windowStart: number } {
  const nowSeconds = Math.floor(nowMs / 1000);
  return { key: `${kind}#${createHash('sha256').update(subject).digest('base64url')}`, windowStart: nowSeconds - (nowSeconds % limit.perSeconds) };
}

/**
 * Count `amount` events against a fixed-window limit; true while the window's total stays within
 * it. The key is hashed, so any client id fits a DynamoDB key.
 */
export async function withinRate(deps: BrokerDeps, kind: string, subject: string, limit: RateLimit, amount: number): Promise<boolean> {
  const { key, windowStart } = rateWindow(deps.now(), kind, subject, limit);
  const total = await deps.securityStore.countInWindow(key, windowStart, limit.perSeconds, amount);
  return total <= limit.count;
}

/**
 * Limits on a batch of packets from one connection: each packet's size ([MQTT-3.2.2-15]-style on
 * the server side, for the door that frames nothing), and the publish rate, charged once per
 * batch for all the PUBLISH packets from the first one on (one counter write per batch).
 */
export class BatchLimits {
  private charged = false;

  constructor(
    private readonly deps: BrokerDeps,
    private readonly frames: readonly Buffer[],
  ) {}

  /** Throws the protocol error that closes the connection (5.0: DISCONNECT 0x95 or 0x96). */
  async admit(connection: ConnectionRecord | undefined, index: number): Promise<void> {
    const frame = this.frames[index]!;
    if (frame.length > this.deps.config.maximumPacketSize) {
      throw new MqttProtocolError(ReasonCode.PacketTooLarge, `packet of ${frame.length} bytes exceeds ${this.deps.config.maximumPacketSize}`);
    }
    const limit = this.deps.config.publishRate;
    if (!limit || !connection || this.charged || frame[0]! >> 4 !== PUBLISH_TYPE) return;
    this.charged = true;
    const publishes = this.frames.slice(index).filter((f) => f[0]! >> 4 === PUBLISH_TYPE).length;
    if (!(await withinRate(this.deps, 'publish', connection.clientId, limit, publishes))) {
      throw new MqttProtocolError(ReasonCode.MessageRateTooHigh, `more than ${limit.count} PUBLISH packets in ${limit.perSeconds} s`);
    }
  }
}

/** How many more filters a client may subscribe to; filters it already has cost nothing. */
export class SubscriptionQuota {
  /** The filters admitted that the client did not have, in order. */
  readonly added: string[] = [];

  private constructor(
    private readonly existing: Set<string>,
    private room: number,
  ) {}

  static async load(ctx: ConnectedContext): Promise<SubscriptionQuota> {
    const filters = await ctx.deps.store.subscriptions.subscriptionFilters(ctx.connection.clientId);
    return new SubscriptionQuota(new Set(filters), ctx.deps.config.maxSubscriptionsPerClient - filters.length);
  }

  /** Take room for the filter; false when there is none left. */
  admit(filter: string): boolean {
    if (this.existing.has(filter)) return true;
    if (this.room <= 0) return false;
    this.room -= 1;
    this.existing.add(filter);
    this.added.push(filter);
    return true;
  }

  /**
   * The added filters counted in the user's subscriptions (MQTT_MAX_SUBSCRIPTIONS_PER_USER; anonymous
   * clients are one user), when the session outlives its connection: the count they are in, and
   * those beyond its bound, which are refused.
   */
  async countPerUser(ctx: ConnectedContext): Promise<{ countedUnder?: string; refused: Set<string> }> {
    const bound = ctx.deps.config.maxSubscriptionsPerUser;
    const { connection } = ctx;
    // Only a session that outlives its connection keeps subscriptions offline: the others' go with it.
    if (bound === undefined || connection.sessionExpiryInterval === 0) return { refused: new Set() };
    const counted = await ctx.deps.store.subscriptions.countNewSubscriptions(connection.username ?? '', connection.clientId, this.added.length, bound);
    return { countedUnder: counted.countedUnder, refused: new Set(this.added.slice(counted.admitted)) };
  }
}
