/** The MQTT fixed header: packet type and flags, then Remaining Length as a variable byte integer. */
import { MqttProtocolError, ReasonCode } from './reason-codes';

export interface FixedHeader {
  headerLength: number;
  remainingLength: number;
}

/** Undefined while the header is incomplete; throws when the length encoding is malformed. */
export function readFixedHeader(bytes: Buffer, offset = 0): FixedHeader | undefined {
  let remainingLength = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    if (offset + i >= bytes.length) return undefined;
    const byte = bytes[offset + i]!;
    remainingLength += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { headerLength: 1 + i, remainingLength };
    multiplier *= 128;
  }
  // [MQTT-1.5.5-1] a variable byte integer uses at most four bytes
  throw new MqttProtocolError(ReasonCode.MalformedPacket, 'remaining length longer than four bytes');
}

/**
 * The Protocol Level byte of a CONNECT, read without decoding the rest, so a CONNECT of a
 * version the codec does not know can still be answered (undefined if it is not a CONNECT).
 */
export function connectProtocolLevel(bytes: Buffer): number | undefined {
  if (bytes.length < 2 || bytes[0]! >> 4 !== 1) return undefined;
  const header = readFixedHeader(bytes);
  if (!header) return undefined;
  const nameStart = header.headerLength + 2;
  if (bytes.length < nameStart) return undefined;
  const nameLength = bytes.readUInt16BE(header.headerLength);
  const name = bytes.subarray(nameStart, nameStart + nameLength).toString('latin1');
  if (name !== 'MQTT' && name !== 'MQIsdp') return undefined;
  return bytes[nameStart + nameLength];
}

const CONNACK = 2;

/** Whether `bytes` begin with a CONNACK that accepts the connection. */
export function isAcceptingConnack(bytes: Buffer): boolean {
  if (bytes.length === 0 || bytes[0]! >> 4 !== CONNACK) return false;
  const header = readFixedHeader(bytes);
  // Acknowledge flags, then the reason code (3.1.1: the return code): 0 is the only success in both.
  return header !== undefined && bytes[header.headerLength + 1] === 0;
}
