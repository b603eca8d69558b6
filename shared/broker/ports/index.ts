/**
 * The ports the broker core needs from the outside world, one file per concern. The DynamoDB
 * adapters (shared/store/) and the @connections gateway (shared/gateway/) implement them; the core
 * never imports an SDK.
 */
export * from './messages';
export * from './connections';
export * from './sessions';
export * from './subscriptions';
export * from './deliveries';
export * from './receipts';
export * from './retained';
export * from './wills';
export * from './gateway';
export * from './logger';
export * from './security';
export * from './inbox';
export * from './errors';
export * from './rules';
import type { ConnectionStore } from './connections';
import type { DeliveryStore } from './deliveries';
import type { ReceiptStore } from './receipts';
import type { RetainedStore } from './retained';
import type { SessionStore } from './sessions';
import type { SubscriptionStore } from './subscriptions';
import type { WillStore } from './wills';

/** The broker's state, by concern: each a narrow port with its own DynamoDB adapter. */
export interface BrokerStore {
  readonly connections: ConnectionStore;
  readonly sessions: SessionStore;
  readonly subscriptions: SubscriptionStore;
  readonly deliveries: DeliveryStore;
  readonly receipts: ReceiptStore;
  readonly retained: RetainedStore;
  readonly wills: WillStore;
}
export * from './fanout';
export * from './doors';
