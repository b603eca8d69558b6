/**
 * Fan-out: find the subscriptions that match a message's topic, and queue the message to every
 * subscriber that is connected, at the lower of the published and granted QoS.
 */
import { encodePacket, type PublishPacket, type QoS } from '../protocol/codec';
import type { BrokerDeps } from './context';
import type { Outbox } from './outbox';
import type { ApplicationMessage, OutgoingMessage, SessionRecord, Subscription } from './ports';

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

  await Promise.all(
    [...targets].map(async ([clientId, subscription]) => {
      const session = sessions.get(clientId);
      // Offline sessions keep their subscriptions; queueing for them arrives with persistent sessions.
      if (!session?.connectionId || outbox.isClosing(session.connectionId)) return;
      // [MQTT-3.8.4-8] delivered at the lower of the published QoS and the granted QoS
      const qos = Math.min(message.qos, subscription.qos) as QoS;
      let packetId: number | undefined;
      if (qos > 0) {
        [packetId] = await deps.store.allocatePacketIds(clientId, 1);
        if (packetId === undefined) return;
        const outgoing: OutgoingMessage = { ...message, qos, packetId, retain: retainFlag(message, subscription) };
        await deps.store.putOutgoing(clientId, [outgoing]);
      }
      outbox.send(session.connectionId, encodePacket(publishFor(session, subscription, message, qos, packetId), session.protocolVersion));
    }),
  );
  return targets.size;
}

/**
 * One delivery per client even when several of its filters match, at the highest granted QoS
 * ([MQTT-3.3.5-1] in 3.1.1; allowed by [MQTT-3.3.4-2] in 5.0). No Local drops the publisher's own.
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

function publishFor(
  session: SessionRecord,
  subscription: Subscription,
  message: ApplicationMessage,
  qos: QoS,
  packetId: number | undefined,
): PublishPacket {
  return {
    cmd: 'publish',
    topic: message.topic,
    payload: message.payload,
    qos,
    dup: false,
    retain: retainFlag(message, subscription),
    ...(packetId !== undefined ? { messageId: packetId } : {}),
    ...(session.protocolVersion === 5 && message.properties ? { properties: message.properties } : {}),
  };
}
