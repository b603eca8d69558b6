/** What a CONNECT asks for, read from its packet: the client's own limits, the session's expiry, the will. */
import type { ConnectPacket, ProtocolVersion } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import type { MessageProperties, WillMessage } from './ports';

export interface ClientLimits {
  readonly receiveMaximum: number;
  readonly topicAliasMaximum: number;
  readonly maximumPacketSize?: number;
}

/** What the client accepts from the broker (5.0 CONNECT properties; 3.1.1 has no limits to tell). */
export function clientLimits(packet: ConnectPacket, version: ProtocolVersion): ClientLimits {
  if (version !== 5) return { receiveMaximum: 65535, topicAliasMaximum: 0 };
  const properties = packet.properties ?? {};
  // MQTT 5.0 section 3.1.2.11: a Receive Maximum or Maximum Packet Size of 0 is a protocol error
  if (properties.receiveMaximum === 0) throw new MqttProtocolError(ReasonCode.ProtocolError, 'Receive Maximum 0');
  if (properties.maximumPacketSize === 0) throw new MqttProtocolError(ReasonCode.ProtocolError, 'Maximum Packet Size 0');
  return {
    receiveMaximum: properties.receiveMaximum ?? 65535,
    topicAliasMaximum: properties.topicAliasMaximum ?? 0,
    ...(properties.maximumPacketSize !== undefined ? { maximumPacketSize: properties.maximumPacketSize } : {}),
  };
}

/**
 * The session's expiry in seconds, at most the broker's maximum (BrokerConfig.maxSessionExpiry):
 * no client keeps a session forever. A 5.0 client given less than it asked is told so in CONNACK.
 */
export function sessionExpiryOf(packet: ConnectPacket, version: ProtocolVersion, cleanStart: boolean, maximum = Infinity): number {
  // 3.1.1: Clean Session 0 keeps the session (for the broker's maximum); 1 ends it with the connection.
  if (version !== 5) return cleanStart ? 0 : maximum;
  // [MQTT-3.1.2-11]: absent means 0, the session ends when the network connection closes
  return Math.min(packet.properties?.sessionExpiryInterval ?? 0, maximum);
}

export function willOf(will: NonNullable<ConnectPacket['will']>, version: ProtocolVersion): WillMessage {
  const { willDelayInterval, ...rest } = (version === 5 ? will.properties : undefined) ?? {};
  const properties = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)) as MessageProperties;
  return {
    topic: will.topic,
    payload: Buffer.isBuffer(will.payload) ? will.payload : Buffer.from(will.payload),
    qos: will.qos ?? 0,
    retain: will.retain ?? false,
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
    ...(willDelayInterval ? { delayInterval: willDelayInterval } : {}),
  };
}
