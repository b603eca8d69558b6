/** Subscriptions and the lookup of the ones matching a topic. */
import type { QoS } from '../../protocol/codec';

export interface SubscriptionOptions {
  readonly qos: QoS;
  readonly noLocal?: boolean;
  readonly retainAsPublished?: boolean;
  readonly retainHandling?: number;
  /** 5.0 Subscription Identifier, returned with every message the subscription matches. */
  readonly subscriptionIdentifier?: number;
  /**
   * The subscriber's deny rules that overlap the filter (acl.ts, denialsFor): a message on a
   * topic one of them matches is not delivered on this subscription. Absent: none.
   */
  readonly denials?: readonly string[];
}

export interface Subscription extends SubscriptionOptions {
  readonly clientId: string;
  /** The per-user count the subscription is in (countNewSubscriptions), as stored; absent: not counted. */
  readonly countedUnder?: string;
  /** The topic filter without any `$share/<group>/` prefix. */
  readonly filter: string;
  /** The share name of a shared subscription (`$share/<group>/<filter>`). */
  readonly shareGroup?: string;
}

/** New subscriptions counted in their owner's: how many fit, and the count they are in. */
export interface CountedSubscriptions {
  readonly admitted: number;
  readonly countedUnder: string;
}

/** Subscriptions, and the index that finds the ones matching a topic. */
export interface SubscriptionStore {

  /**
   * Count `count` new subscriptions of the client's in its owner's (anonymous clients: ''),
   * within `bound`: all of them, or as many as there is room for. Counted out when they go.
   */
  countNewSubscriptions(owner: string, clientId: string, count: number, bound: number): Promise<CountedSubscriptions>;
  /**
   * Store the subscriptions (replacing any with the same filter); for each, whether it existed.
   * `countedUnder`: the count they are in (countNewSubscriptions), to be counted out of when they go.
   */
  subscribe(clientId: string, subscriptions: readonly Subscription[], countedUnder?: string): Promise<boolean[]>;
  /** Remove subscriptions by filter as sent (`$share/g/f` included); for each, whether it existed. */
  unsubscribe(clientId: string, filters: readonly string[]): Promise<boolean[]>;
  /** Every subscription whose filter matches the topic name, read strongly consistently. */
  findSubscriptions(topic: string): Promise<Subscription[]>;
  /**
   * The same for many topics at once (a key per distinct topic, each with its subscriptions), in a
   * number of DynamoDB rounds that grows neither with the topics' depth nor with their number;
   * a filter matching many of the topics is read once.
   */
  findSubscriptionsForTopics(topics: readonly string[]): Promise<Map<string, Subscription[]>>;

  /** The filters the client is subscribed to now (for the subscriptions-per-client limit). */
  subscriptionFilters(clientId: string): Promise<string[]>;
  /** The client's subscriptions as stored, options included (a resumed session's are checked again). */
  clientSubscriptions(clientId: string): Promise<Subscription[]>;
}
