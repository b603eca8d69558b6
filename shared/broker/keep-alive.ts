/**
 * Each door drops idle connections (NLB TLS after 350 s, API Gateway after 10 minutes), and the
 * operator may set a lower maximum (MQTT_MAX_KEEPALIVE). A 5.0 client that asks for a longer
 * keep-alive, or none, is given the lower of the two as Server Keep Alive, which it must then use
 * [MQTT-3.2.2-21]. A 3.1.1 client cannot be told: it is held to the operator's maximum all the
 * same (3.1.1 lets a server close an inactive client at any time), rather than refused, so a
 * device whose keep-alive cannot be changed still connects; past the door's own limit only the
 * door's idle timeout closes it. The CONNECT handler and the listener (which closes silent
 * connections) apply these rules.
 */
import type { ProtocolVersion } from '../protocol/codec';

/** The longest keep-alive a connection on a door is given. */
export function keepAliveCeiling(doorLimit: number, maxKeepAlive: number | undefined): number {
  return Math.min(doorLimit, maxKeepAlive ?? doorLimit);
}

/** The Server Keep Alive a client gets, if any. */
export function serverKeepAlive(version: ProtocolVersion, requested: number, limit: number): number | undefined {
  if (version !== 5) return undefined;
  return requested === 0 || requested > limit ? limit : undefined;
}

/** The keep-alive the broker holds a client to (0: none). */
export function heldKeepAlive(version: ProtocolVersion, requested: number, doorLimit: number, maxKeepAlive: number | undefined): number {
  if (version === 5) return serverKeepAlive(version, requested, keepAliveCeiling(doorLimit, maxKeepAlive)) ?? requested;
  return maxKeepAlive !== undefined && (requested === 0 || requested > maxKeepAlive) ? maxKeepAlive : requested;
}
