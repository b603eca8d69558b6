/**
 * Who may connect, checked at CONNECT before any session is touched, in order: the client id
 * fits, the credentials (or their absence) are accepted, the will topic is one the identity may
 * publish to; then, as the session is opened, that the client id is not reconnecting faster than
 * the configured rate (connectRateCharge).
 */
import type { ConnectPacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import type { BrokerDeps } from './context';
import { clientIdOverLimit, rateWindow, topicOverLimit } from './limits';
import type { Identity, RateCharge } from './ports';
import { isSysTopic } from './sys-topics';

export type Admission = { ok: true; identity: Identity } | { ok: false; reasonCode: number; why: string };

export async function admitConnection(
  deps: BrokerDeps,
  {
    connectionId,
    sourceAddress,
    certificateUser,
  }: { readonly connectionId: string; readonly sourceAddress: string | undefined; readonly certificateUser: string | undefined },
  packet: ConnectPacket,
  clientId: string,
): Promise<Admission> {
  // 5.0 0x85 / 3.1.1 CONNACK 2: "the Client Identifier is a valid string but is not allowed by the Server"
  if (clientIdOverLimit(deps.config, clientId)) return { ok: false, reasonCode: ReasonCode.ClientIdentifierNotValid, why: 'client id too long' };

  const authentication = await deps.security.authenticate({
    connectionId,
    ...(sourceAddress !== undefined ? { sourceAddress } : {}),
    ...(certificateUser !== undefined ? { certificateUser } : {}),
    ...(packet.username !== undefined ? { username: packet.username } : {}),
    ...(packet.password !== undefined ? { password: Buffer.from(packet.password) } : {}),
    ...(packet.properties?.authenticationMethod !== undefined ? { authenticationMethod: packet.properties.authenticationMethod } : {}),
  });
  if (!authentication.ok) return authentication;
  const { identity } = authentication;
  const access = deps.security.access({ clientId, ...identity });
  // The operator's connect rules bind client ids to identities (0x85 / 3.1.1 CONNACK 2, as above).
  if (!access.canConnect()) return { ok: false, reasonCode: ReasonCode.ClientIdentifierNotValid, why: 'client id not allowed for this identity' };

  if (packet.will) {
    const limit = topicOverLimit(deps.config, packet.will.topic, ReasonCode.TopicNameInvalid);
    if (limit !== undefined) return { ok: false, reasonCode: limit, why: 'will topic over the topic limits' };
    // A will is a PUBLISH to come: none to the broker's own figures either (authorization.ts).
    if (isSysTopic(packet.will.topic) || !access.canPublish(packet.will.topic)) {
      return { ok: false, reasonCode: ReasonCode.NotAuthorized, why: 'not authorized to publish the will topic' };
    }
  }

  return { ok: true, identity };
}

/**
 * The CONNECT counted against the connect rate (MQTT_CONNECT_RATE), once authenticated, per
 * (identity, client id): another identity's attempts with this client id spend their own budget,
 * never its owner's. Counted by the session store as it opens the session (the short way: in the
 * same transaction), so a clean start costs no call of its own for it.
 */
export function connectRateCharge(deps: BrokerDeps, identity: Identity, clientId: string): RateCharge | undefined {
  const rate = deps.config.connectRate;
  if (!rate) return undefined;
  const { key, windowStart } = rateWindow(deps.now(), 'connect', `${identity.username ?? ''}\u0000${clientId}`, rate);
  return { key, windowStart, windowSeconds: rate.perSeconds, amount: 1, limit: rate.count };
}

/** What a CONNECT refused for the connect rate is told. */
export function connectRateRefusal(deps: BrokerDeps): { reasonCode: number; why: string } {
  const rate = deps.config.connectRate!;
  return { reasonCode: ReasonCode.ConnectionRateExceeded, why: `more than ${rate.count} connections in ${rate.perSeconds} s` };
}
