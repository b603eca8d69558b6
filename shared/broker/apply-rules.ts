/**
 * The rules' hook in routing (route.ts): every message the broker routes (a PUBLISH, a will, an
 * HTTP publish through the same path) is offered to the rules (shared/rules/, docs/rules.md).
 * A QoS 1/2 message is acknowledged only after every rule's target accepted it or its
 * dead-letter destination did: routing waits for that, or, for a PUBLISH, hands it on in its
 * Deliver action (`rulesAccepted`), which the run of PUBLISHes awaits with its deliveries, so a
 * run's messages reach a target in one batch. When neither took it, the PUBLISH fails as a store
 * that cannot keep it fails it (0x89 Server busy, nothing acknowledged: the client sends it
 * again). A QoS 0 message does not wait: its deliveries go on beside the routing, failures logged
 * and counted by the engine. A republish rule's message is routed as a PUBLISH of its own, and
 * its deliveries join this message's.
 */
import type { QoS } from '../protocol/codec';
import type { Republish } from '../rules/rule-engine';
import { republishTopic } from '../rules/rule-match';
import type { Delivery } from './actions';
import type { BrokerDeps } from './context';
import { StoreUnavailableError, type ApplicationMessage } from './ports';

/** A message republished by a rule may fire rules in turn, up to this depth (two rules republishing into each other stop here). */
export const MAX_REPUBLISH_DEPTH = 3;

/** What the rules made of a message: the deliveries of what they republished, and when its targets have it. */
export interface Ruled {
  readonly deliveries: Delivery[];
  /**
   * QoS 1/2: resolves once every rule's target (or its dead-letter destination) accepted the
   * message and what it republished; rejects with StoreUnavailableError otherwise. None for QoS 0,
   * or when no rule fired.
   */
  readonly accepted?: Promise<void>;
}

export async function applyRules(
  deps: BrokerDeps,
  message: ApplicationMessage,
  publisherClientId: string,
  depth: number,
  route: (republished: ApplicationMessage) => Promise<{ deliveries: Delivery[]; rulesAccepted?: Promise<void> }>,
): Promise<Ruled> {
  const rules = deps.rules;
  if (!rules) return { deliveries: [] };
  if (depth >= MAX_REPUBLISH_DEPTH) {
    deps.log.warn('rules not applied: republished too many times', { topic: message.topic, depth });
    return { deliveries: [] };
  }
  const userProperties = message.properties?.userProperties;
  const { republish, accepted } = await rules.route({
    topic: message.topic,
    payload: message.payload,
    qos: message.qos,
    retain: message.retain,
    clientId: publisherClientId,
    ...(userProperties ? { userProperties } : {}),
    timestamp: deps.now(),
  });
  const republished = await Promise.all(
    republish.flatMap((r) => {
      const next = republishedMessage(r, message);
      if (next) return [route(next)];
      deps.log.warn('rule did not republish: its topic is not a topic name', { rule: r.rule, topic: message.topic });
      return [];
    }),
  );
  const deliveries = republished.flatMap((r) => r.deliveries);
  if (message.qos === 0) return { deliveries };
  const all = Promise.all([
    accepted.catch((error: unknown) => {
      throw new StoreUnavailableError('busy', error instanceof Error ? error.message : String(error));
    }),
    ...republished.flatMap((r) => (r.rulesAccepted ? [r.rulesAccepted] : [])),
  ]).then(() => undefined);
  // Awaited later (with the run's deliveries, before its acknowledgements): not an unhandled rejection meanwhile.
  all.catch(() => undefined);
  return { deliveries, accepted: all };
}

/** The republished message: the selected fields as JSON when the rule selects, else the payload and properties as published. */
function republishedMessage({ target, event }: Republish, source: ApplicationMessage): ApplicationMessage | undefined {
  const topic = republishTopic(target, event);
  if (topic === undefined) return undefined;
  const qos = (target.qos ?? Math.min(source.qos, 1)) as QoS;
  if (event.selected) return { topic, payload: Buffer.from(JSON.stringify(event.selected)), qos, retain: false };
  return {
    topic,
    payload: source.payload,
    qos,
    retain: false,
    ...(source.properties ? { properties: source.properties } : {}),
    ...(source.expiresAtMs !== undefined ? { expiresAtMs: source.expiresAtMs } : {}),
  };
}
