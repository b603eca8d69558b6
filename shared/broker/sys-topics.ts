/**
 * `$SYS/broker/...`: the broker's figures, in Mosquitto's names, published by the broker itself
 * as retained QoS 0 messages through the same path as any message (stored as retained, routed to
 * the subscribers of the moment), each time the scheduled job runs (the sweeper, every minute in
 * the cloud; the harness every few seconds). The figures are the fleet's counters summed over
 * their shards (shared/store/dynamo-stats.ts), so they are as old as the oldest unflushed count:
 * at most a flush interval plus the publisher's interval, for processes that keep running.
 *
 * Clients cannot publish to `$SYS/...` (publish.ts): only the broker's figures are there.
 * [MQTT-4.7.2-1] `#` and `+/...` subscriptions do not match them; reading them needs a filter
 * that starts with `$SYS` and, under an ACL, a rule granting it (`read $SYS/#`).
 */
import { deliver } from './actions';
import type { BrokerDeps } from './context';
import { Dispatcher } from './dispatcher';
import type { ApplicationMessage } from './ports';
import { routeMessage } from './route';
import type { SummedCounter } from './stats';

export const SYS_PREFIX = '$SYS/';

/** What the publisher reads: the summed counters and the first flush's time. */
export interface SysFigures {
  readonly counts: Readonly<Record<SummedCounter, number>>;
  readonly startedAt?: number;
}

/** The client id the broker's own messages are published under: U+0000 is in no client's [MQTT-1.5.4-2]. */
const BROKER_CLIENT_ID = '\u0000broker';

/** Each topic and its payload, from the figures. */
export function sysMessages(figures: SysFigures, now: number): Array<{ topic: string; payload: string }> {
  const { counts } = figures;
  const uptime = figures.startedAt === undefined ? 0 : Math.max(0, Math.floor((now - figures.startedAt) / 1000));
  return [
    // Connections accepted minus connections ended, as the fleet has flushed them.
    { topic: '$SYS/broker/clients/connected', payload: String(Math.max(0, counts.connects - counts.disconnects)) },
    { topic: '$SYS/broker/clients/total', payload: String(counts.connects) },
    { topic: '$SYS/broker/messages/received', payload: String(counts.packetsReceived) },
    { topic: '$SYS/broker/messages/sent', payload: String(counts.packetsSent) },
    { topic: '$SYS/broker/publish/messages/received', payload: String(counts.publishReceived) },
    { topic: '$SYS/broker/publish/messages/sent', payload: String(counts.publishSent) },
    { topic: '$SYS/broker/subscriptions/count', payload: String(Math.max(0, counts.subscriptions)) },
    { topic: '$SYS/broker/retained messages/count', payload: String(Math.max(0, counts.retained)) },
    // Mosquitto's form: "<n> seconds".
    { topic: '$SYS/broker/uptime', payload: `${uptime} seconds` },
  ];
}

/**
 * Publishes the figures, retained. Costs per run: one retained write and one subscriber lookup
 * per topic (nine), whatever the traffic.
 */
export async function publishSysTopics(deps: BrokerDeps, figures: SysFigures): Promise<number> {
  const messages = sysMessages(figures, deps.now());
  const dispatcher = new Dispatcher(deps);
  // The topics side by side; each one's message stored, then routed.
  const routed = await Promise.all(
    messages.map(async ({ topic, payload }) => {
      const message: ApplicationMessage = { topic, payload: Buffer.from(payload), qos: 0, retain: true };
      await deps.store.retained.putRetained(message);
      return (await routeMessage(deps, message, BROKER_CLIENT_ID)).deliveries;
    }),
  );
  await dispatcher.perform([deliver(routed.flat())]);
  // Subscribers found gone here are ended by their own close, or the sweeper.
  await dispatcher.flush();
  return messages.length;
}

/** A topic a client may not publish to, whatever its ACL says: the broker's own. */
export function isSysTopic(topic: string): boolean {
  return topic.startsWith(SYS_PREFIX) || topic === '$SYS';
}
