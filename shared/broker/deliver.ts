/**
 * Delivery to sessions: every message on its way to a client passes here, whether it comes
 * from a PUBLISH, a will, a retained-message replay or a drained queue.
 *
 * QoS 0 goes to connected clients only. QoS 1 and 2 start in flight when the client is
 * connected, has room under its Receive Maximum and nothing queued ahead: one transaction per
 * client takes their packet ids and records them in flight, before a byte is sent, so an
 * acknowledgement always finds its message and a reconnecting client's CONNECT always finds it to
 * resend. Otherwise they join the session's queue, which drains as acknowledgements free room and
 * when the client reconnects.
 */
import { randomUUID } from 'node:crypto';
import { encodePacket, type ProtocolVersion, type PublishPacket, type QoS } from '../protocol/codec';
import { forEachBounded } from '../util/concurrency';
import type { BrokerDeps } from './context';
import type { Outbox } from './outbox';
import { ReasonCode } from '../protocol/reason-codes';
import { closeWithReason } from './disconnect';
import { StoreUnavailableError, type OutgoingMessage, type QueuedMessage, type Recipient } from './ports';

const PARALLEL_CLIENTS = 32;
/** Claim-send-release rounds of one drain whose queue keeps filling meanwhile. */
const MAX_DRAIN_ROUNDS = 20;
const DEFAULT_RECEIVE_MAXIMUM = 65535;

export interface Delivery {
  readonly recipient: Recipient;
  /** The message as this client receives it: QoS, RETAIN and subscription identifiers decided. */
  readonly message: QueuedMessage;
}

export async function deliver(deps: BrokerDeps, outbox: Outbox, deliveries: readonly Delivery[]): Promise<void> {
  const now = deps.now();
  const byClient = new Map<string, Delivery[]>();
  for (const delivery of deliveries) {
    // [MQTT-3.3.2-5] a message whose expiry interval has passed is not delivered
    if (isExpired(delivery.message, now)) continue;
    if (tooLarge(deps, delivery, now)) {
      deps.log.warn('message larger than the subscriber or its door accepts, not sent', { clientId: delivery.recipient.clientId, topic: delivery.message.topic });
      continue;
    }
    const list = byClient.get(delivery.recipient.clientId);
    if (list) list.push(delivery);
    else byClient.set(delivery.recipient.clientId, [delivery]);
  }

  const sends: Array<{ recipient: Recipient; message: QueuedMessage; packetId?: number }> = [];
  const drains = new Map<string, Recipient>();
  const failures: unknown[] = [];
  // One client's messages in order, one after another; different clients in parallel.
  await forEachBounded([...byClient.values()], PARALLEL_CLIENTS, async (list) => {
    const first = list[0]!.recipient;
    const online = first.connectionId && !outbox.isClosing(first.connectionId) ? first.connectionId : undefined;
    const planned: typeof sends = [];
    try {
      const acknowledged = list.filter((d) => d.message.qos > 0).map((d) => d.message);
      // The client's QoS 1/2 messages go in flight together (recorded before a byte is sent), or queue.
      const starts =
        online && acknowledged.length > 0
          ? await deps.store.deliveries.startDeliveries(first.clientId, online, first.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM, acknowledged)
          : acknowledged.map(() => 'queue' as const);
      for (const { recipient, message } of list) {
        if (message.qos === 0) {
          if (online) planned.push({ recipient, message });
          continue;
        }
        const start = starts.shift()!;
        if (start === 'duplicate') continue;
        if (start !== 'queue') {
          planned.push({ recipient, message, packetId: start.packetId });
          continue;
        }
        const queued = await deps.store.deliveries.enqueue(message);
        if (queued.drainOn) drains.set(recipient.clientId, { ...recipient, connectionId: queued.drainOn });
      }
    } catch (error) {
      failures.push(error);
      // Whether the failed write took effect is unknown: a message may now be in flight that this
      // handler cannot send, and later ones would overtake it. The client's connection closes
      // instead; its next CONNECT resends what is in flight, in order.
      if (online) abandon(deps, outbox, first, error);
    }
    sends.push(...planned);
  });

  for (const { recipient, message, packetId } of sends) send(outbox, recipient, message, packetId, false, now);
  for (const recipient of drains.values()) await drainQueue(deps, outbox, recipient);
  // Not all delivered (or queued): the publisher is not acknowledged, and resends.
  if (failures.length > 0) throw failures[0];
}

/** Close a subscriber's connection whose deliveries could not be recorded or sent in order (see deliver). */
function abandon(deps: BrokerDeps, outbox: Outbox, recipient: Recipient, error: unknown): void {
  deps.log.warn('closing a subscriber whose deliveries failed; its session resends them when it reconnects', {
    clientId: recipient.clientId,
    connectionId: recipient.connectionId,
    error: String(error),
  });
  const reasonCode = error instanceof StoreUnavailableError ? ReasonCode.ServerBusy : ReasonCode.UnspecifiedError;
  closeWithReason(outbox, recipient.connectionId!, recipient.protocolVersion, reasonCode);
}

/**
 * Move a connected client's queued messages into flight while it has room (recorded by the claim)
 * and send them at once, holding new deliveries to the client back until they are out, so none
 * overtakes them. `hold` is the caller's own hold (a CONNECT's, taken with its claim) or a new one.
 * What is queued meanwhile is drained before the hold is released.
 */
export async function drainQueue(deps: BrokerDeps, outbox: Outbox, recipient: Recipient, hold = `drain:${randomUUID()}`): Promise<void> {
  const { clientId, connectionId } = recipient;
  if (!connectionId || outbox.isClosing(connectionId)) return;
  const receiveMaximum = recipient.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM;
  try {
    for (let round = 0; ; round++) {
      const { messages } = await deps.store.deliveries.claimQueued(clientId, connectionId, receiveMaximum, hold);
      const now = deps.now();
      // Queued under the session's last connection, a message may be too large for this one.
      const dropped = messages.filter((message) => tooLarge(deps, { recipient, message }, now));
      for (const message of messages) if (!dropped.includes(message)) send(outbox, recipient, message, message.packetId, false, now);
      await outbox.flushNow(deps, connectionId);
      if (dropped.length > 0) {
        // [MQTT-3.1.2-25] discarded as if sent and acknowledged; the room they took is claimed again
        await completeUnsendable(deps, recipient, dropped);
      } else if ((await deps.store.deliveries.releaseHold(clientId, connectionId, hold, receiveMaximum)) !== 'queued') {
        return;
      }
      if (round >= MAX_DRAIN_ROUNDS) throw new Error('the queue kept growing while it was drained');
    }
  } catch (error) {
    // Claimed messages may be unsent, or the hold kept: the client reconnects, and its CONNECT resends and drains.
    abandon(deps, outbox, recipient, error);
    throw error;
  }
}

/**
 * A client resumed its session: every message still in flight to it goes again, in order, before
 * anything new [MQTT-4.4.0-1]. A PUBLISH is resent with DUP set [MQTT-3.3.1-1]; one the client
 * already acknowledged with PUBREC gets its PUBREL again.
 */
export async function resendInFlight(deps: BrokerDeps, outbox: Outbox, recipient: Recipient): Promise<void> {
  if (!recipient.connectionId) return;
  const messages = await deps.store.deliveries.listOutgoing(recipient.clientId);
  // The client may have a different Receive Maximum now: count what is really in flight.
  if ((recipient.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM) < DEFAULT_RECEIVE_MAXIMUM) await deps.store.deliveries.setInFlight(recipient.clientId, messages.length);
  const now = deps.now();
  const dropped: OutgoingMessage[] = [];
  for (const message of messages) {
    if (message.state === 'pubrel') {
      outbox.send(recipient.connectionId, encodePacket({ cmd: 'pubrel', messageId: message.packetId }, recipient.protocolVersion));
    } else if (tooLarge(deps, { recipient, message }, now)) {
      // [MQTT-3.1.2-24] this connection's Maximum Packet Size may be smaller than the last one's
      dropped.push(message);
    } else {
      send(outbox, recipient, message, message.packetId, true, now);
    }
  }
  await completeUnsendable(deps, recipient, dropped);
}

/** [MQTT-3.1.2-25] messages too large for the client: the broker behaves as if it had completed sending them. */
async function completeUnsendable(deps: BrokerDeps, recipient: Recipient, messages: readonly OutgoingMessage[]): Promise<void> {
  for (const message of messages) {
    deps.log.info('message larger than the subscriber accepts, not sent', { clientId: recipient.clientId, topic: message.topic });
    await deps.store.deliveries.completeOutgoing(recipient.clientId, message.packetId, recipient.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM);
  }
}

function send(outbox: Outbox, recipient: Recipient, message: QueuedMessage, packetId: number | undefined, dup: boolean, now: number): void {
  const packet = publishPacket(recipient.protocolVersion, message, packetId, dup, now);
  const connectionId = recipient.connectionId!;
  if (recipient.protocolVersion === 5 && (recipient.topicAliasMaximum ?? 0) > 0) {
    outbox.sendPublish(connectionId, packet, recipient.topicAliasMaximum!);
  } else {
    outbox.send(connectionId, encodePacket(packet, recipient.protocolVersion));
  }
}

export function publishPacket(version: ProtocolVersion, message: QueuedMessage, packetId: number | undefined, dup: boolean, now: number): PublishPacket {
  return {
    cmd: 'publish',
    topic: message.topic,
    payload: message.payload,
    qos: message.qos as QoS,
    dup,
    retain: message.retain,
    ...(packetId !== undefined ? { messageId: packetId } : {}),
    ...(version === 5 ? { properties: propertiesFor(message, now) } : {}),
  };
}

function propertiesFor(message: QueuedMessage, now: number): NonNullable<PublishPacket['properties']> {
  const properties: NonNullable<PublishPacket['properties']> = { ...message.properties };
  // [MQTT-3.3.2-6] the expiry interval sent on is what remains of it
  if (message.expiresAtMs !== undefined) properties.messageExpiryInterval = Math.max(1, Math.ceil((message.expiresAtMs - now) / 1000));
  const ids = message.subscriptionIdentifiers ?? [];
  // [MQTT-3.3.4-3] the identifiers of the subscriptions that matched
  if (ids.length === 1) properties.subscriptionIdentifier = ids[0]!;
  else if (ids.length > 1) properties.subscriptionIdentifier = [...ids];
  return properties;
}

function isExpired(message: QueuedMessage, now: number): boolean {
  return message.expiresAtMs !== undefined && message.expiresAtMs <= now;
}

/** [MQTT-3.1.2-25] a packet larger than the client's Maximum Packet Size (or its door's) is not sent to it. */
function tooLarge(deps: BrokerDeps, { recipient, message }: Delivery, now: number): boolean {
  const limit = deps.doors.outboundPacketLimit(recipient.connectionId, recipient.maximumPacketSize);
  if (limit === undefined) return false;
  // The packet id's value does not change the size; a placeholder stands in.
  const packet = publishPacket(recipient.protocolVersion, message, message.qos > 0 ? 1 : undefined, false, now);
  return encodePacket(packet, recipient.protocolVersion).length > limit;
}
