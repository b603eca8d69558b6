/**
 * What a session is owed besides new messages: its queue (drained when room frees up, and when its
 * client reconnects) and, on reconnect, what was in flight.
 */
import { randomUUID } from 'node:crypto';
import { send, type Action } from './actions';
import type { BrokerDeps } from './context';
import { publishPacket, tooLarge } from './outgoing';
import type { OutgoingMessage, Recipient } from './ports';
import { LEASES } from './leases';
import { QUEUE_CLAIM_BATCH } from './delivery-policy';

/** Claim-send-release rounds of one drain whose queue keeps filling meanwhile. */
const MAX_DRAIN_ROUNDS = 20;
const DEFAULT_RECEIVE_MAXIMUM = 65535;

/** Sends claimed messages to the client at once (the dispatcher's part of a drain). */
export type SendNow = (messages: readonly OutgoingMessage[]) => Promise<void>;

/** A drain's own hold on the session's deliveries (a CONNECT holds them with its claim: connectHold). */
export function newDrainHold(): string {
  return `drain:${randomUUID()}`;
}

/**
 * Move a connected client's queued messages into flight while it has room (recorded by the claim),
 * send them, then release the claim's hold: new deliveries to the client wait (queued) until then,
 * so none overtakes them. What is queued meanwhile is drained before the hold is released. On
 * failure, claimed messages may be unsent or the hold kept: the caller closes the connection, and
 * the client's next CONNECT resends and drains.
 */
export async function drainQueue(deps: BrokerDeps, recipient: Recipient & { readonly connectionId: string }, hold: string, sendNow: SendNow): Promise<void> {
  const { clientId, connectionId } = recipient;
  const receiveMaximum = recipient.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM;
  for (let round = 0; ; round++) {
    const { messages } = await deps.store.deliveries.claimQueued(clientId, connectionId, receiveMaximum, { token: hold, leaseMs: LEASES.deliveryHoldMs }, QUEUE_CLAIM_BATCH);
    const now = deps.now();
    // Queued under the session's last connection, a message may be too large for this one.
    const dropped = messages.filter((message) => tooLarge(deps.doors, { recipient, message }, now));
    await sendNow(messages.filter((message) => !dropped.includes(message)));
    if (dropped.length > 0) {
      // [MQTT-3.1.2-25] discarded as if sent and acknowledged; the room they took is claimed again
      await completeUnsendable(deps, recipient, dropped);
    } else if ((await deps.store.deliveries.releaseHold(clientId, connectionId, hold, receiveMaximum)) !== 'queued') {
      return;
    }
    if (round >= MAX_DRAIN_ROUNDS) throw new Error('the queue kept growing while it was drained');
  }
}

/**
 * A client resumed its session: every message still in flight to it goes again, in order, before
 * anything new [MQTT-4.4.0-1]. A PUBLISH is resent with DUP set [MQTT-3.3.1-1]; one the client
 * already acknowledged with PUBREC gets its PUBREL again.
 */
export async function inFlightResends(deps: BrokerDeps, recipient: Recipient & { readonly connectionId: string }): Promise<Action[]> {
  const { connectionId, protocolVersion } = recipient;
  const messages = await deps.store.deliveries.listOutgoing(recipient.clientId);
  // The client may have a different Receive Maximum now: count what is really in flight.
  if ((recipient.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM) < DEFAULT_RECEIVE_MAXIMUM) await deps.store.deliveries.setInFlight(recipient.clientId, messages.length);
  const now = deps.now();
  const dropped: OutgoingMessage[] = [];
  const resends: Action[] = [];
  for (const message of messages) {
    if (message.state === 'pubrel') {
      resends.push(send(connectionId, protocolVersion, { cmd: 'pubrel', messageId: message.packetId }));
    } else if (tooLarge(deps.doors, { recipient, message }, now)) {
      // [MQTT-3.1.2-24] this connection's Maximum Packet Size may be smaller than the last one's
      dropped.push(message);
    } else {
      resends.push(send(connectionId, protocolVersion, publishPacket(protocolVersion, message, message.packetId, true, now), recipient.topicAliasMaximum));
    }
  }
  await completeUnsendable(deps, recipient, dropped);
  return resends;
}

/** [MQTT-3.1.2-25] messages too large for the client: the broker behaves as if it had completed sending them. */
async function completeUnsendable(deps: BrokerDeps, recipient: Recipient, messages: readonly OutgoingMessage[]): Promise<void> {
  for (const message of messages) {
    deps.log.info('message larger than the subscriber accepts, not sent', { clientId: recipient.clientId, topic: message.topic });
    await deps.store.deliveries.completeOutgoing(recipient.clientId, message.packetId, recipient.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM);
  }
}
