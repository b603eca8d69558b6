/**
 * Routing: find the subscriptions that match a message's topic, decide what each subscriber
 * receives (QoS, RETAIN, subscription identifiers), and pick one member of each
 * shared-subscription group. The deliveries it returns are made by the dispatcher.
 */
import type { QoS } from '../protocol/codec';
import { topicMatches } from '../protocol/topic';
import type { Delivery } from './actions';
import { applyRules } from './apply-rules';
import type { BrokerDeps } from './context';
import type { ApplicationMessage, SessionRecord, Subscription } from './ports';
import { newRoutingCache, type RoutingCache } from './routing-cache';

export interface Routed {
  readonly deliveries: Delivery[];
  /** How many subscriptions matched, a shared group counting once. */
  readonly matched: number;
  /** With `deferRules`: when the rules' targets have the message (QoS 1/2), to await before acknowledging it. */
  readonly rulesAccepted?: Promise<void>;
}

export interface RouteOptions {
  /**
   * Return before the rules' targets accepted the message, with `rulesAccepted` to await (a
   * PUBLISH's Deliver action carries it, so a run's messages reach their targets in one batch);
   * otherwise routing resolves only once they have it.
   */
  readonly deferRules?: boolean;
  /** How many rules republished this message on its way here (apply-rules.ts). */
  readonly depth?: number;
}

export async function routeMessage(
  deps: BrokerDeps,
  message: ApplicationMessage,
  publisherClientId: string,
  cache?: RoutingCache,
  options: RouteOptions = {},
): Promise<Routed> {
  const depth = options.depth ?? 0;
  // The rules see every routed message; a republished one is routed as a message of its own (apply-rules.ts).
  const [routed, ruled] = await Promise.all([
    routeToSubscribers(deps, message, publisherClientId, cache),
    applyRules(deps, message, publisherClientId, depth, (next) => routeMessage(deps, next, publisherClientId, cache, { depth: depth + 1, deferRules: true })),
  ]);
  const deliveries = ruled.deliveries.length === 0 ? routed.deliveries : [...routed.deliveries, ...ruled.deliveries];
  if (!ruled.accepted) return { ...routed, deliveries };
  if (options.deferRules) return { ...routed, deliveries, rulesAccepted: ruled.accepted };
  await ruled.accepted;
  return { ...routed, deliveries };
}

async function routeToSubscribers(deps: BrokerDeps, message: ApplicationMessage, publisherClientId: string, cache?: RoutingCache): Promise<Routed> {
  // Without a batch's cache (a will), a cache of its own: the lookup still joins any made in the same turn.
  const { subscriptions, sessions } = await (cache ?? newRoutingCache()).get(deps.store, message.topic);
  const { perClient, groups } = groupSubscriptions(subscriptions, message.topic, publisherClientId);
  if (perClient.size + groups.size === 0) return { deliveries: [], matched: 0 };

  const deliveries: Delivery[] = [];
  for (const [clientId, matched] of perClient) {
    const session = sessions.get(clientId);
    if (session) deliveries.push(deliveryFor(session, message, matched, clientId));
  }
  for (const members of groups.values()) {
    const chosen = chooseMember(members, sessions);
    // A QoS 2 PUBLISH routed again goes to the group once, whichever member is chosen this time.
    if (chosen) deliveries.push(deliveryFor(chosen.session, message, [chosen.subscription], `$share/${chosen.subscription.shareGroup}/${chosen.subscription.filter}`));
  }
  return { deliveries, matched: perClient.size + groups.size };
}

function groupSubscriptions(subscriptions: readonly Subscription[], topic: string, publisherClientId: string) {
  const perClient = new Map<string, Subscription[]>();
  const groups = new Map<string, Subscription[]>();
  for (const subscription of subscriptions) {
    // A deny rule of the subscriber that its filter overlaps matches this topic: not for it.
    if (subscription.denials?.some((denial) => topicMatches(denial, topic))) continue;
    if (subscription.shareGroup !== undefined) {
      const key = `${subscription.shareGroup}/${subscription.filter}`;
      groups.set(key, [...(groups.get(key) ?? []), subscription]);
      continue;
    }
    // [MQTT-3.8.3-3] No Local: not delivered to the client that published it
    if (subscription.noLocal && subscription.clientId === publisherClientId) continue;
    perClient.set(subscription.clientId, [...(perClient.get(subscription.clientId) ?? []), subscription]);
  }
  return { perClient, groups };
}

/**
 * MQTT 5.0 section 4.8.2: a shared subscription's message goes to one member: a connected one when
 * there is one (so a member that left is taken over by the others), picked at random to spread
 * the load; otherwise one whose session is kept, where it waits in the queue.
 */
function chooseMember(members: readonly Subscription[], sessions: ReadonlyMap<string, SessionRecord>) {
  const candidates = members.flatMap((subscription) => {
    const session = sessions.get(subscription.clientId);
    return session ? [{ subscription, session }] : [];
  });
  const connected = candidates.filter((c) => c.session.connectionId !== undefined);
  const pool = connected.length > 0 ? connected : candidates;
  return pool[Math.floor(Math.random() * pool.length)];
}

/**
 * One copy per client even when several of its subscriptions match: at the highest granted QoS
 * ([MQTT-3.3.5-1] in 3.1.1; [MQTT-3.3.4-2] in 5.0), carrying every matching subscription's
 * identifier ([MQTT-3.3.4-3]).
 */
function deliveryFor(session: SessionRecord, { origin, ...message }: ApplicationMessage, matched: readonly Subscription[], target: string): Delivery {
  const granted = Math.max(...matched.map((s) => s.qos));
  const ids = matched.flatMap((s) => (s.subscriptionIdentifier !== undefined ? [s.subscriptionIdentifier] : []));
  // [MQTT-3.3.1-9] (3.1.1) / [MQTT-3.3.1-12] (5.0): RETAIN is 0 on normal delivery unless Retain As Published
  const retain = message.retain && matched.some((s) => s.retainAsPublished === true);
  // [MQTT-3.8.4-8] the lower of the published QoS and the granted QoS
  const qos = Math.min(message.qos, granted) as QoS;
  return {
    recipient: session,
    message: {
      ...message,
      clientId: session.clientId,
      qos,
      retain,
      ...(ids.length > 0 ? { subscriptionIdentifiers: ids } : {}),
      // [MQTT-4.3.3] exactly once to each subscriber (or shared group), however often the PUBLISH is routed
      ...(origin && qos === 2 ? { once: { clientId: origin.clientId, key: `${origin.id}>${target}` } } : {}),
    },
  };
}
