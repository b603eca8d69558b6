/**
 * Each door drops idle connections (NLB TLS after 350 s, API Gateway after 10 minutes). A 5.0
 * client that asks for a longer keep-alive, or none, is given the door's limit as Server Keep
 * Alive, which it must then use [MQTT-3.2.2-21]. The CONNECT handler and the listener (which
 * closes silent connections) apply this one rule. A 3.1.1 client cannot be told; the door closes
 * its connection when it stays idle too long.
 */
import type { ProtocolVersion } from '../protocol/codec';

/** The Server Keep Alive a client gets, if any. */
export function serverKeepAlive(version: ProtocolVersion, requested: number, limit: number): number | undefined {
  if (version !== 5) return undefined;
  return requested === 0 || requested > limit ? limit : undefined;
}
