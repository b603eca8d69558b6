/**
 * The rules' hook in routing (route.ts): every message the broker routes (a PUBLISH, a will, an
 * HTTP publish through the same path) is offered to the rules (shared/rules/, docs/rules.md).
 * Their targets get it before the routing returns, so a QoS 1/2 PUBLISH is acknowledged only
 * after every rule's target accepted it or its dead-letter destination did; when neither did,
 * the PUBLISH fails as a store that cannot keep it fails it (0x89 Server busy, nothing
 * acknowledged: the client sends it again). A QoS 0 message does not wait: its deliveries go on
 * beside the routing, failures logged and counted by the engine. A republish rule's message is
 * routed as a PUBLISH of its own, and its deliveries join this message's.
 */
import type { QoS } from '../protocol/codec';
import type { Republish } from '../rules/rule-engine';
import { republishTopic } from '../rules/rule-match';
import type { Delivery } from './actions';
import type { BrokerDeps } from './context';
import { StoreUnavailableError, type ApplicationMessage } from './ports';

/** A message republished by a rule may fire rules in turn, up to this depth (two rules republishing into each other stop here). */
export const MAX_REPUBLISH_DEPTH = 3;

/** The deliveries of the messages rules republished; resolves once the message is safe with every rule's target (QoS 1/2). */
export async function applyRules(
  deps: BrokerDeps,
  message: ApplicationMessage,
  publisherClientId: string,
  depth: number,
  route: (republished: ApplicationMessage) => Promise<{ deliveries: Delivery[] }>,
): Promise<Delivery[]> {
  const rules = deps.rules;
  if (!rules) return [];
  if (depth >= MAX_REPUBLISH_DEPTH) {
    deps.log.warn('rules not applied: republished too many times', { topic: message.topic, depth });
    return [];
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
  if (message.qos > 0) {
    await accepted.catch((error: unknown) => {
      throw new StoreUnavailableError('busy', error instanceof Error ? error.message : String(error));
    });
  }
  return republished.flatMap((r) => r.deliveries);
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
