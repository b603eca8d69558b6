/**
 * SUBSCRIBE: validate each filter, store the accepted subscriptions (so a PUBLISH after the
 * SUBACK finds them), SUBACK with one reason code per filter, in order, then send the retained
 * messages the new subscriptions ask for. Steps:
 *   checkFilters -> store -> suback -> replayRetained
 */
import type { QoS, SubscribePacket } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { checkTopicFilter } from '../protocol/topic';
import { subscriptionDenials, subscriptionRefusal } from './authorization';
import { deliver, type Action, type Delivery } from './actions';
import { afterConnect, isV5, reply, selfRecipient, type ConnectedContext } from './context';
import { SubscriptionQuota } from './limits';
import type { Subscription } from './ports';
import { subscribeProblem, withReasonString } from './problem-information';

const SHARED_PREFIX = '$share/';
const MAX_SUBSCRIPTION_IDENTIFIER = 268_435_455;

export const handleSubscribe = afterConnect<SubscribePacket>(async (ctx, packet) => {
  const v5 = isV5(ctx.connection);
  const subscriptionIdentifier = checkSubscriptionIdentifier(packet);
  const quota = await SubscriptionQuota.load(ctx);
  const accepted: Subscription[] = [];
  const granted = packet.subscriptions.map((request): number => {
    const parsed = parseFilter(request.topic);
    // 3.1.1 has a single failure code, 0x80 [MQTT-3.9.3-2]
    if (!parsed) return v5 ? ReasonCode.TopicFilterInvalid : ReasonCode.UnspecifiedError;
    // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error
    if (parsed.shareGroup !== undefined && request.nl) throw new MqttProtocolError(ReasonCode.ProtocolError, 'No Local on a shared subscription');
    // Topic limits, the ACL and the subscriptions-per-client quota
    const refusal = subscriptionRefusal(ctx, parsed.filter, quota, request.topic);
    if (refusal !== undefined) return v5 ? refusal : ReasonCode.UnspecifiedError;
    accepted.push({
      clientId: ctx.connection.clientId,
      ...parsed,
      qos: request.qos,
      ...(v5 ? { noLocal: request.nl ?? false, retainAsPublished: request.rap ?? false, retainHandling: request.rh ?? 0 } : {}),
      ...(subscriptionIdentifier !== undefined ? { subscriptionIdentifier } : {}),
      // The deny rules the filter overlaps, filtering its deliveries
      ...subscriptionDenials(ctx, request.topic),
    });
    // [MQTT-3.8.4-6] the granted QoS is the requested one: the broker supports QoS 2
    return request.qos;
  });
  // Beyond the user's subscriptions, new filters are refused as beyond the client's
  const perUser = await quota.countPerUser(ctx);
  const stored = refuseOverQuota(accepted, granted, packet, perUser.refused, v5);
  // [MQTT-3.8.4-3] a subscription with the same filter replaces the existing one
  const existed = stored.length > 0 ? await ctx.deps.store.subscriptions.subscribe(ctx.connection.clientId, stored, perUser.countedUnder) : [];
  ctx.batch.routes.clear();
  // [MQTT-3.8.4-1] the SUBACK carries the packet identifier of the SUBSCRIBE
  // 5.0: a Reason String says why filters were refused, unless the client asked for none
  const suback = withReasonString(ctx.connection, { cmd: 'suback', messageId: packet.messageId!, granted }, subscribeProblem(ctx.deps.config, packet.subscriptions.map((s) => s.topic), granted));
  return [reply(ctx, suback), ...(await replayRetained(ctx, stored, existed))];
});

/** The accepted subscriptions but those refused by the user's quota, whose codes become 0x97 Quota exceeded (3.1.1: 0x80). */
function refuseOverQuota(accepted: Subscription[], granted: number[], packet: SubscribePacket, refused: ReadonlySet<string>, v5: boolean): Subscription[] {
  if (refused.size === 0) return accepted;
  packet.subscriptions.forEach((request, i) => {
    if (refused.has(request.topic) && granted[i]! < 0x80) granted[i] = v5 ? ReasonCode.QuotaExceeded : ReasonCode.UnspecifiedError;
  });
  return accepted.filter((s) => !refused.has(sentFilterOf(s)));
}

function sentFilterOf(subscription: Subscription): string {
  return subscription.shareGroup === undefined ? subscription.filter : `${SHARED_PREFIX}${subscription.shareGroup}/${subscription.filter}`;
}

/**
 * [MQTT-3.3.1-9] (5.0: Retain Handling) retained messages matching a new subscription are sent
 * with RETAIN set: always (0), only if the subscription is new (1), or never (2); never to a
 * shared subscription (MQTT 5.0 section 3.3.1.3).
 */
async function replayRetained(ctx: ConnectedContext, accepted: readonly Subscription[], existed: readonly boolean[]): Promise<Action[]> {
  const recipient = selfRecipient(ctx.connection);
  const wanted = accepted.filter((s, i) => {
    if (s.shareGroup !== undefined) return false;
    const handling = s.retainHandling ?? 0;
    return handling === 0 || (handling === 1 && !existed[i]);
  });
  const replays: Action[] = [];
  for (const subscription of wanted) {
    // The ACL is checked per retained topic: a wildcard may reach topics the client may not read.
    const access = ctx.deps.security.access(ctx.connection);
    const found = await ctx.deps.store.retained.findRetained(subscription.filter, ctx.deps.config.maxRetainedReplay);
    // A bounded walk per filter: a `#` over a large tree replays its first part only.
    if (found.truncated) ctx.deps.log.warn('retained replay stopped at its bound', { clientId: ctx.connection.clientId, filter: subscription.filter, bound: ctx.deps.config.maxRetainedReplay });
    const retained = found.messages.filter((message) => access.canReceive(message.topic));
    const deliveries = retained.map(
      (message): Delivery => ({
        recipient,
        message: {
          ...message,
          clientId: ctx.connection.clientId,
          qos: Math.min(message.qos, subscription.qos) as QoS,
          // [MQTT-3.3.1-8] RETAIN is set on a message sent because of a new subscription
          retain: true,
          ...(subscription.subscriptionIdentifier !== undefined ? { subscriptionIdentifiers: [subscription.subscriptionIdentifier] } : {}),
        },
      }),
    );
    replays.push(deliver(deliveries));
  }
  return replays;
}

/** A Subscription Identifier is 1..268,435,455; 0 is a protocol error (MQTT 5.0 section 3.8.2.1.2). */
function checkSubscriptionIdentifier(packet: SubscribePacket): number | undefined {
  const id = packet.properties?.subscriptionIdentifier;
  if (id === undefined) return undefined;
  if (id < 1 || id > MAX_SUBSCRIPTION_IDENTIFIER) throw new MqttProtocolError(ReasonCode.ProtocolError, `subscription identifier ${id}`);
  return id;
}

/** A valid filter and its share name, if it is `$share/<name>/<filter>`; undefined when invalid. */
function parseFilter(sent: string): Pick<Subscription, 'filter' | 'shareGroup'> | undefined {
  if (!sent.startsWith(SHARED_PREFIX)) return checkTopicFilter(sent).ok ? { filter: sent } : undefined;
  const rest = sent.slice(SHARED_PREFIX.length);
  const slash = rest.indexOf('/');
  // [MQTT-4.8.2-1] a share name is at least one character, without '/', '+' or '#'; [MQTT-4.8.2-2] a filter follows
  if (slash <= 0) return undefined;
  const shareGroup = rest.slice(0, slash);
  const filter = rest.slice(slash + 1);
  if (/[+#]/.test(shareGroup) || !checkTopicFilter(filter).ok) return undefined;
  return { filter, shareGroup };
}
