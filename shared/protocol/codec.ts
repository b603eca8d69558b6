/**
 * The wire format, through mqtt-packet. Each call decodes exactly one framed packet, since the
 * handlers are stateless: the protocol version a connection negotiated is passed in.
 */
import mqttPacket from 'mqtt-packet';
import type { Packet } from 'mqtt-packet';
import { readFixedHeader } from './fixed-header';
import { MqttProtocolError, ReasonCode } from './reason-codes';
import { rejectIllFormedStrings } from './strict-utf8';

export type {
  Packet,
  IConnectPacket as ConnectPacket,
  IConnackPacket as ConnackPacket,
  IPublishPacket as PublishPacket,
  ISubscribePacket as SubscribePacket,
  ISubackPacket as SubackPacket,
  IUnsubscribePacket as UnsubscribePacket,
  IPubackPacket as PubackPacket,
  IPubrecPacket as PubrecPacket,
  IPubrelPacket as PubrelPacket,
  IPubcompPacket as PubcompPacket,
  IDisconnectPacket as DisconnectPacket,
  IAuthPacket as AuthPacket,
  QoS,
  UserProperties,
} from 'mqtt-packet';

/** 3 = MQTT 3.1 (MQIsdp), 4 = MQTT 3.1.1, 5 = MQTT 5.0. */
export type ProtocolVersion = 3 | 4 | 5;

/**
 * Decode one complete packet. Throws MqttProtocolError(Malformed Packet) when the bytes are not
 * exactly one well-formed packet of that protocol version.
 */
export function decodePacket(bytes: Uint8Array, protocolVersion: ProtocolVersion = 4): Packet {
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: Packet[] = [];
  let failure: Error | undefined;
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', (error: Error) => {
    failure ??= error;
  });
  rejectIllFormedStrings(parser, (reason) => {
    failure ??= new Error(reason);
  });
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // mqtt-packet does not count bytes it began reading as a next header, so the length is checked here.
  const header = readFixedHeader(buffer);
  if (header === undefined || header.headerLength + header.remainingLength !== buffer.length) {
    throw new MqttProtocolError(ReasonCode.MalformedPacket, 'bytes do not hold exactly one packet');
  }
  parser.parse(buffer);
  if (failure) throw new MqttProtocolError(ReasonCode.MalformedPacket, failure.message);
  if (packets.length !== 1) {
    throw new MqttProtocolError(ReasonCode.MalformedPacket, 'bytes do not hold exactly one packet');
  }
  return packets[0]!;
}

/** Encode one packet for a connection of the given protocol version. */
export function encodePacket(packet: Packet, protocolVersion: ProtocolVersion = 4): Buffer {
  return mqttPacket.generate(packet, { protocolVersion });
}
