/** A message as a PUBLISH to one client: its packet, and whether the client (and its door) can take it. */
import { encodePacket, type ProtocolVersion, type PublishPacket, type QoS } from '../protocol/codec';
import type { Delivery } from './actions';
import type { Doors, QueuedMessage } from './ports';

export function publishPacket(version: ProtocolVersion, message: QueuedMessage, packetId: number | undefined, dup: boolean, now: number): PublishPacket {
  return {
    cmd: 'publish',
    topic: message.topic,
    payload: message.payload,
    qos: message.qos as QoS,
    dup,
    retain: message.retain,
    ...(packetId !== undefined ? { messageId: packetId } : {}),
    ...(version === 5 ? { properties: propertiesFor(message, now) } : {}),
  };
}

function propertiesFor(message: QueuedMessage, now: number): NonNullable<PublishPacket['properties']> {
  const properties: NonNullable<PublishPacket['properties']> = { ...message.properties };
  // [MQTT-3.3.2-6] the expiry interval sent on is what remains of it
  if (message.expiresAtMs !== undefined) properties.messageExpiryInterval = Math.max(1, Math.ceil((message.expiresAtMs - now) / 1000));
  const ids = message.subscriptionIdentifiers ?? [];
  // [MQTT-3.3.4-3] the identifiers of the subscriptions that matched
  if (ids.length === 1) properties.subscriptionIdentifier = ids[0]!;
  else if (ids.length > 1) properties.subscriptionIdentifier = [...ids];
  return properties;
}

export function isExpired(message: QueuedMessage, now: number): boolean {
  return message.expiresAtMs !== undefined && message.expiresAtMs <= now;
}

/** [MQTT-3.1.2-25] a packet larger than the client's Maximum Packet Size (or its door's) is not sent to it. */
export function tooLarge(doors: Doors, { recipient, message }: Delivery, now: number): boolean {
  const limit = doors.outboundPacketLimit(recipient.connectionId, recipient.maximumPacketSize);
  if (limit === undefined) return false;
  // The packet id's value does not change the size; a placeholder stands in.
  const packet = publishPacket(recipient.protocolVersion, message, message.qos > 0 ? 1 : undefined, false, now);
  return encodePacket(packet, recipient.protocolVersion).length > limit;
}
