/** The CONNACK a client gets: refused with a reason code, or accepted with what the broker offers (5.0 properties). */
import type { ConnackPacket, ProtocolVersion } from '../protocol/codec';
import { connackReturnCodeFor } from '../protocol/reason-codes';
import type { BrokerConfig } from './context';

export interface Offer {
  readonly config: BrokerConfig;
  /** What the client's door carries, or the broker's own limit (the API Gateway door: one 32 KB frame). */
  readonly maximumPacketSize: number;
  readonly assignedClientIdentifier?: string | undefined;
  readonly serverKeepAlive?: number | undefined;
  readonly responseInformation?: string | undefined;
  /** The Session Expiry Interval the broker grants, when it is not the one the client asked for. */
  readonly sessionExpiryInterval?: number | undefined;
}

export function connackPacket(version: ProtocolVersion, reasonCode: number, sessionPresent: boolean, offer?: Offer, reasonString?: string): ConnackPacket {
  if (version !== 5) {
    // [MQTT-3.2.2-4] (3.1.1) session present is 0 when the connection is refused
    return { cmd: 'connack', returnCode: connackReturnCodeFor(reasonCode), sessionPresent: reasonCode === 0 && sessionPresent };
  }
  return {
    cmd: 'connack',
    reasonCode,
    sessionPresent: reasonCode === 0 && sessionPresent,
    ...(reasonCode === 0 && offer
      ? {
          properties: {
            // [MQTT-3.2.2-16] the id the server chose for a client that sent an empty one
            ...(offer.assignedClientIdentifier ? { assignedClientIdentifier: offer.assignedClientIdentifier } : {}),
            ...(offer.serverKeepAlive !== undefined ? { serverKeepAlive: offer.serverKeepAlive } : {}),
            ...(offer.responseInformation ? { responseInformation: offer.responseInformation } : {}),
            // MQTT 5.0 3.2.2.3.2: the server's own Session Expiry Interval, which the client then uses
            ...(offer.sessionExpiryInterval !== undefined ? { sessionExpiryInterval: offer.sessionExpiryInterval } : {}),
            maximumPacketSize: offer.maximumPacketSize,
            // Absent means 65535, the protocol's own limit.
            ...(offer.config.receiveMaximum < 65535 ? { receiveMaximum: offer.config.receiveMaximum } : {}),
            topicAliasMaximum: offer.config.topicAliasMaximum,
            retainAvailable: true,
            sharedSubscriptionAvailable: true,
            subscriptionIdentifiersAvailable: true,
            wildcardSubscriptionAvailable: true,
          },
        }
      : {}),
    ...(reasonCode !== 0 && reasonString ? { properties: { reasonString } } : {}),
  };
}
