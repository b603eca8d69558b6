/**
 * Fan-out: find the subscriptions that match a message's topic, and queue the message to every
 * subscriber that is connected, at the lower of the published and granted QoS. QoS 1 and 2
 * deliveries are recorded as in flight (one batched write for all subscribers) before they are
 * queued, so an acknowledgement from a subscriber always finds its message.
 */
import { encodePacket, type PublishPacket, type QoS } from '../protocol/codec';
import { outboundPacketLimit } from '../gateway/door-limits';
import { forEachBounded } from './concurrency';
import type { BrokerDeps } from './context';
import type { Outbox } from './outbox';
import type { ApplicationMessage, OutgoingMessage, SessionRecord, Subscription } from './ports';

const PARALLEL_ALLOCATIONS = 32;

interface Delivery {
  readonly session: SessionRecord & { connectionId: string };
  readonly subscription: Subscription;
  readonly qos: QoS;
  packetId?: number;
}

/** Returns how many clients had a matching subscription. */
export async function routeMessage(
  deps: BrokerDeps,
  outbox: Outbox,
  message: ApplicationMessage,
  publisherClientId: string,
): Promise<number> {
  const subscriptions = await deps.store.findSubscriptions(message.topic);
  const targets = strongestPerClient(subscriptions, publisherClientId);
  if (targets.size === 0) return 0;
  const sessions = await deps.store.getSessions([...targets.keys()]);

  const deliveries: Delivery[] = [];
  for (const [clientId, subscription] of targets) {
    const session = sessions.get(clientId);
    // Offline sessions keep their subscriptions; queueing for them arrives with persistent sessions.
    if (!session?.connectionId || outbox.isClosing(session.connectionId)) continue;
    // [MQTT-3.8.4-8] delivered at the lower of the published QoS and the granted QoS
    const delivery: Delivery = { session: { ...session, connectionId: session.connectionId }, subscription, qos: Math.min(message.qos, subscription.qos) as QoS };
    // [MQTT-3.1.2-25] a message larger than the client's Maximum Packet Size (or its door's) is discarded for that client
    if (tooLargeFor(delivery, message)) {
      deps.log.warn('message larger than the subscriber or its door accepts, not sent', { clientId, topic: message.topic });
      continue;
    }
    deliveries.push(delivery);
  }

  const acknowledged = deliveries.filter((d) => d.qos > 0);
  await forEachBounded(acknowledged, PARALLEL_ALLOCATIONS, async (delivery) => {
    [delivery.packetId] = await deps.store.allocatePacketIds(delivery.session.clientId, 1);
  });
  await deps.store.putOutgoing(
    acknowledged.flatMap((d): OutgoingMessage[] =>
      d.packetId === undefined ? [] : [{ ...message, clientId: d.session.clientId, qos: d.qos, packetId: d.packetId, retain: retainFlag(message, d.subscription) }],
    ),
  );

  for (const delivery of deliveries) {
    // No packet id: the session ended meanwhile.
    if (delivery.qos > 0 && delivery.packetId === undefined) continue;
    outbox.send(delivery.session.connectionId, encodePacket(publishFor(delivery, message), delivery.session.protocolVersion));
  }
  return targets.size;
}

/**
 * One delivery per client even when several of its filters match, at the highest granted QoS
 * ([MQTT-3.3.5-1] in 3.1.1; allowed by [MQTT-3.3.4-2] in 5.0).
 */
function strongestPerClient(subscriptions: readonly Subscription[], publisherClientId: string): Map<string, Subscription> {
  const byClient = new Map<string, Subscription>();
  for (const subscription of subscriptions) {
    // [MQTT-3.8.3-3] No Local: not delivered to the connection that published it
    if (subscription.noLocal && subscription.clientId === publisherClientId) continue;
    const current = byClient.get(subscription.clientId);
    if (!current || subscription.qos > current.qos) byClient.set(subscription.clientId, subscription);
  }
  return byClient;
}

/** [MQTT-3.3.1-9] (3.1.1) / [MQTT-3.3.1-12] (5.0): RETAIN is 0 on normal delivery unless Retain As Published. */
function retainFlag(message: ApplicationMessage, subscription: Subscription): boolean {
  return message.retain && (subscription.retainAsPublished ?? false);
}

function tooLargeFor(delivery: Delivery, message: ApplicationMessage): boolean {
  const limit = outboundPacketLimit(delivery.session.connectionId, delivery.session.maximumPacketSize);
  if (limit === undefined) return false;
  // The packet id's value does not change the size; a placeholder stands in before one is allocated.
  const sized = { ...delivery, ...(delivery.qos > 0 ? { packetId: 1 } : {}) };
  return encodePacket(publishFor(sized, message), delivery.session.protocolVersion).length > limit;
}

function publishFor(delivery: Delivery, message: ApplicationMessage): PublishPacket {
  return {
    cmd: 'publish',
    topic: message.topic,
    payload: message.payload,
    qos: delivery.qos,
    dup: false,
    retain: retainFlag(message, delivery.subscription),
    ...(delivery.packetId !== undefined ? { messageId: delivery.packetId } : {}),
    ...(delivery.session.protocolVersion === 5 && message.properties ? { properties: message.properties } : {}),
  };
}
