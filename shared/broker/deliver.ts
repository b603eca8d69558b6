/**
 * Delivery to sessions: every message on its way to a client passes here, whether it comes
 * from a PUBLISH, a will, a retained-message replay or a fan-out worker.
 *
 * QoS 0 goes to connected clients only. QoS 1 and 2 start in flight when the client is
 * connected, has room under its Receive Maximum and nothing queued ahead: per client, one
 * single-item update claims their packet ids and one batched write records them in flight, before
 * a byte is sent, so an acknowledgement always finds its message and a reconnecting client's
 * CONNECT always finds it to resend. Otherwise they join the session's queue, which drains as acknowledgements free room and
 * when the client reconnects; a queue holding BrokerConfig.maxQueuedMessages, or maxQueuedBytes, takes no more. This records; the dispatcher sends what it says (dispatcher.ts).
 */
import type { Delivery } from './actions';
import type { BrokerDeps } from './context';
import { isExpired, tooLarge } from './outgoing';
import type { QueuedMessage, Recipient } from './ports';
import { forEachBounded } from '../util/concurrency';
import { drainAfterQueueing } from './delivery-policy';

const PARALLEL_CLIENTS = 32;
const DEFAULT_RECEIVE_MAXIMUM = 65535;

/** A message to send now: QoS 0, or QoS 1/2 recorded in flight with its packet id. */
export interface Sendable {
  readonly recipient: Recipient;
  readonly message: QueuedMessage;
  readonly packetId?: number;
}

/** What recording a list of deliveries came to. */
export interface Recorded {
  /** To send now, each client's in order. */
  readonly sends: readonly Sendable[];
  /** Clients whose queue is to be drained now (connected, with room). */
  readonly drains: readonly Recipient[];
  /**
   * Clients whose writes failed: whether they took effect is unknown, so a message may be in flight
   * that cannot be sent now, and later ones would overtake it. `connectionId`: the client's
   * connection, which is closed instead; its next CONNECT resends what is in flight, in order.
   */
  readonly failed: ReadonlyArray<{ readonly recipient: Recipient; readonly connectionId?: string; readonly error: unknown }>;
}

/** `isClosing`: connections this batch closes, which are sent nothing more. */
export async function recordDeliveries(deps: BrokerDeps, deliveries: readonly Delivery[], isClosing: (connectionId: string) => boolean): Promise<Recorded> {
  const now = deps.now();
  const byClient = new Map<string, Delivery[]>();
  for (const delivery of deliveries) {
    // [MQTT-3.3.2-5] a message whose expiry interval has passed is not delivered
    if (isExpired(delivery.message, now)) {
      deps.stats?.count('deliveriesExpired');
      continue;
    }
    if (tooLarge(deps.doors, delivery, now)) {
      deps.stats?.count('deliveriesDropped');
      deps.log.warn('message larger than the subscriber or its door accepts, not sent', { clientId: delivery.recipient.clientId, topic: delivery.message.topic });
      continue;
    }
    const list = byClient.get(delivery.recipient.clientId);
    if (list) list.push(delivery);
    else byClient.set(delivery.recipient.clientId, [delivery]);
  }

  const sends: Sendable[] = [];
  const drains = new Map<string, Recipient>();
  const failed: Array<Recorded['failed'][number]> = [];
  // One client's messages in order, one after another; different clients in parallel.
  await forEachBounded([...byClient.values()], PARALLEL_CLIENTS, async (list) => {
    const first = list[0]!.recipient;
    const online = first.connectionId && !isClosing(first.connectionId) ? first.connectionId : undefined;
    const planned: Sendable[] = [];
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
        const queued = await deps.store.deliveries.enqueue(message, { messages: deps.config.maxQueuedMessages, bytes: deps.config.maxQueuedBytes });
        // The publisher is not told: its PUBLISH went to every other subscriber (docs/security.md, Limits).
        if (!queued.queued && queued.full) deps.stats?.count('deliveriesDropped');
        if (!queued.queued && queued.full) deps.log.warn('session queue full, message dropped for this subscriber', { clientId: recipient.clientId, topic: message.topic });
        const drainOn = queued.queued ? drainAfterQueueing(queued.session, deps.now()) : undefined;
        if (drainOn) drains.set(recipient.clientId, { ...recipient, connectionId: drainOn });
      }
      sends.push(...planned);
    } catch (error) {
      failed.push({ recipient: first, ...(online ? { connectionId: online } : {}), error });
    }
  });
  return { sends, drains: [...drains.values()], failed };
}
