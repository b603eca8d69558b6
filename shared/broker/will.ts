/**
 * Will messages. A connection's will is published when the connection ends without a normal
 * DISCONNECT (socket lost, keep-alive timeout, protocol error, takeover, server shutdown)
 * [MQTT-3.1.2-8], and not after one [MQTT-3.1.2-10] (5.0: unless its reason is 0x04). 5.0 may
 * delay it by the Will Delay Interval; a new connection to the session before then cancels it
 * [MQTT-3.1.3-9], and the end of the session publishes it at once.
 *
 * A delayed will is an item in the session's partition with a due time in the timer index;
 * runDueTimers(), run by the sweeper on a schedule, publishes the ones that are due.
 */
import { deliver } from './actions';
import type { BrokerDeps } from './context';
import { Dispatcher } from './dispatcher';
import type { ApplicationMessage, CloseSessionResult, ConnectionRecord, WillMessage } from './ports';
import { routeMessage } from './route';
import { LEASES } from './leases';

/** The connection ended; `closed` is what happened to its session. */
export async function settleWill(deps: BrokerDeps, connection: ConnectionRecord, closed: CloseSessionResult): Promise<void> {
  const will = connection.will;
  if (!will) return;
  const delay = connection.protocolVersion === 5 ? will.delayInterval ?? 0 : 0;
  // Taken over: a new connection to the session exists already, which cancels a delayed will.
  if (closed === 'taken-over' && delay > 0) return;
  // Published when the delay passes or the session ends, whichever comes first.
  const wait = Math.min(delay, connection.sessionExpiryInterval);
  if (wait === 0) {
    await publishWill(deps, connection.clientId, will, `will#${connection.connectionId}`);
    return;
  }
  if (!(await deps.store.wills.scheduleWill(connection.clientId, will, deps.now() + wait * 1000))) return;
  deps.log.info('will scheduled', { clientId: connection.clientId, delaySeconds: wait });
}

/**
 * Publish a will. `id` names this publication of it: if the publisher dies and it is published
 * again, its QoS 2 deliveries carry the same exactly-once marks (QueuedMessage.once), so no
 * subscriber gets it twice; QoS 1 ones are at least once.
 */
export async function publishWill(deps: BrokerDeps, clientId: string, will: WillMessage, id: string): Promise<void> {
  const now = deps.now();
  const message: ApplicationMessage = {
    topic: will.topic,
    payload: will.payload,
    qos: will.qos,
    retain: will.retain,
    ...(will.properties ? { properties: will.properties } : {}),
    ...(will.properties?.messageExpiryInterval !== undefined ? { expiresAtMs: now + will.properties.messageExpiryInterval * 1000 } : {}),
  };
  // [MQTT-3.1.2-17] a will with Will Retain set is published as a retained message
  if (message.retain) await deps.store.retained.putRetained(message);
  const { deliveries } = await routeMessage(deps, { ...message, origin: { clientId, id, routed: false } }, clientId);
  const dispatcher = new Dispatcher(deps);
  await dispatcher.perform([deliver(deliveries)]);
  // Subscribers found gone here are ended by their own close, or the sweeper.
  await dispatcher.flush();
  deps.log.info('will published', { clientId, topic: will.topic });
}

/** Publish the wills that are due and end the sessions that expired. Returns what it did. */
export async function runDueTimers(deps: BrokerDeps, limit = 100): Promise<{ wills: number; sessions: number }> {
  // Wills first: a will due at its session's end must be claimed before the session's state goes.
  const wills = await deps.store.wills.claimDueWills(deps.now(), limit, LEASES.willPublicationMs);
  for (const due of wills) {
    await publishWill(deps, due.clientId, due.will, `will@${due.id}`);
    await deps.store.wills.completeWill(due.clientId, due.id);
  }
  const { ended: sessions, wills: ending } = await deps.store.sessions.endExpiredSessions(deps.now(), limit, LEASES.willPublicationMs);
  // Delayed wills whose session ended first: published now, as the session ends.
  for (const due of ending) await publishWill(deps, due.clientId, due.will, `will@${due.id}`);
  return { wills: wills.length + ending.length, sessions };
}
