/**
 * An application message on its way into the broker, whoever sent it: a client's PUBLISH
 * (publish.ts) or a publisher with no MQTT connection (HTTP publish). Both store the retained
 * message and route through here, so whatever routing does (No Local, shared subscriptions, the
 * rules hooked into it) happens for both.
 *
 * publishApplicationMessage is the whole path for a publisher without a connection: the checks a
 * PUBLISH passes (topic name, limits, `$SYS`, the ACL), then accept, then the deliveries recorded
 * (QoS 1/2 in flight or queued) and sent, as the dispatcher does before a PUBACK would go out.
 */
import { checkTopicName } from '../protocol/topic';
import { deliver } from './actions';
import type { BrokerDeps } from './context';
import { handleConnectionClosed } from './connection-closed';
import { Dispatcher } from './dispatcher';
import { topicOverLimit } from './limits';
import type { ApplicationMessage } from './ports';
import { routeMessage, type RouteOptions, type Routed } from './route';
import type { RoutingCache } from './routing-cache';
import { isSysTopic } from './sys-topics';
import { ReasonCode } from '../protocol/reason-codes';

/** Who publishes: what routing and the retained quota see of it. */
export interface Publisher {
  /** The client id No Local compares with ([MQTT-3.8.3-3]) and `%c` stands for in ACL rules. */
  readonly clientId: string;
  /** Whose retained topics a new one counts in (absent: anonymous). */
  readonly username?: string;
  readonly acl?: readonly string[];
  /** Whether this message's publisher can be told it was refused for the retained quota (else it is delivered, not retained). */
  readonly hearsRefusals: boolean;
}

/**
 * [MQTT-3.3.1-5] a retained message is stored (an empty one removes it, [MQTT-3.3.1-6]) and
 * still delivered to the current subscribers. A new retained topic beyond its user's bound
 * (MQTT_MAX_RETAINED_PER_USER) is not stored: a publisher that can be told is refused
 * ('over-quota': not delivered either); one that cannot is delivered without being retained.
 */
export async function acceptMessage(
  deps: BrokerDeps,
  message: ApplicationMessage,
  publisher: Publisher,
  routes?: RoutingCache,
  options?: RouteOptions,
): Promise<Routed | 'over-quota'> {
  if (message.retain && (await storeRetained(deps, message, publisher)) === 'quota-exceeded') {
    deps.log.warn('retained topics per user exceeded: message not retained', { clientId: publisher.clientId, username: publisher.username, topic: message.topic });
    if (publisher.hearsRefusals) return 'over-quota';
  }
  return routeMessage(deps, message, publisher.clientId, routes, options);
}

function storeRetained(deps: BrokerDeps, message: ApplicationMessage, publisher: Publisher): Promise<'stored' | 'quota-exceeded'> {
  const bound = deps.config.maxRetainedPerUser;
  const { origin: _origin, ...retained } = message;
  return deps.store.retained.putRetained(retained, bound === undefined ? undefined : { owner: publisher.username ?? '', bound });
}

export type Published = { ok: true; matched: number } | { ok: false; reasonCode: number; why: string };

/**
 * A message from a publisher with no connection, checked as a PUBLISH is, accepted, and its
 * deliveries made. Resolves once every delivery is in flight or queued (what a PUBACK waits
 * for); rejects when one could not be recorded, so the publisher is not told it was accepted.
 */
export async function publishApplicationMessage(deps: BrokerDeps, message: ApplicationMessage, publisher: Publisher): Promise<Published> {
  deps.stats?.count('publishReceived');
  const topic = checkTopicName(message.topic);
  if (!topic.ok) return { ok: false, reasonCode: ReasonCode.TopicNameInvalid, why: topic.reason };
  const limit = topicOverLimit(deps.config, message.topic, ReasonCode.TopicNameInvalid);
  if (limit !== undefined) return { ok: false, reasonCode: limit, why: 'topic name over the broker\'s limits' };
  // As publish.ts: no one writes to the broker's own figures, whatever its ACL grants.
  if (isSysTopic(message.topic) || !deps.security.access(publisher).canPublish(message.topic)) {
    deps.log.info('publish refused', { clientId: publisher.clientId, username: publisher.username, topic: message.topic });
    return { ok: false, reasonCode: ReasonCode.NotAuthorized, why: 'not authorized to publish to this topic' };
  }
  const accepted = await acceptMessage(deps, message, publisher);
  if (accepted === 'over-quota') return { ok: false, reasonCode: ReasonCode.QuotaExceeded, why: 'retained topics per user exceeded' };
  const dispatcher = new Dispatcher(deps);
  await dispatcher.perform([deliver(accepted.deliveries)]);
  // Subscribers found gone while sending end as a close would end them (their wills published).
  const gone = await dispatcher.flush();
  await Promise.all(gone.map((connectionId) => handleConnectionClosed(deps, connectionId)));
  return { ok: true, matched: accepted.matched };
}
