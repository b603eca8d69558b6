/**
 * fast-check arbitraries for hostile input: valid packets (built by mqtt-packet), the same packets
 * mutated (flipped bytes, truncation, a bad Remaining Length, reserved flags, ill-formed UTF-8),
 * and plain random bytes. Shared by the property suite and the raw-socket fuzzer.
 */
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';

export type Version = 4 | 5;

const topicLevel = fc.constantFrom('a', 'b', 'dev', '+', '#', '', '$SYS', 'é', 'x'.repeat(40));
const topic = fc.array(topicLevel, { minLength: 1, maxLength: 5 }).map((levels) => levels.join('/'));
const qos = fc.constantFrom(0 as const, 1 as const, 2 as const);
const packetId = fc.integer({ min: 1, max: 65535 });
const payload = fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes));

/** Packet objects a client could send (some of them still protocol errors: wildcards in topics, a second CONNECT...). */
export function packetObject(version: Version): fc.Arbitrary<Packet> {
  const v5 = version === 5;
  return fc.oneof(
    fc.record({ topic, payload, qos, retain: fc.constant(false), dup: fc.boolean(), messageId: packetId }).map(
      (p): Packet => ({ cmd: 'publish', ...p, dup: p.qos === 0 ? false : p.dup, ...(p.qos === 0 ? { messageId: undefined } : {}) }) as Packet,
    ),
    fc.record({ messageId: packetId, subscriptions: fc.array(fc.record({ topic, qos }), { minLength: 1, maxLength: 3 }) }).map(
      (p): Packet => ({ cmd: 'subscribe', ...p }) as Packet,
    ),
    fc.record({ messageId: packetId, unsubscriptions: fc.array(topic, { minLength: 1, maxLength: 3 }) }).map(
      (p): Packet => ({ cmd: 'unsubscribe', ...p }) as Packet,
    ),
    fc.constantFrom('puback', 'pubrec', 'pubrel', 'pubcomp').chain((cmd) => packetId.map((messageId): Packet => ({ cmd, messageId }) as Packet)),
    fc.constant({ cmd: 'pingreq' } as Packet),
    fc.constant({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 5, clientId: 'again' } as Packet),
    ...(v5 ? [fc.constant({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'x' } } as Packet)] : []),
  );
}

export function encode(packet: Packet, version: Version): Buffer | undefined {
  try {
    return mqttPacket.generate(packet, { protocolVersion: version });
  } catch {
    return undefined; // mqtt-packet refuses to build it (e.g. an invalid topic): not a useful input
  }
}

/** A variable byte integer that is not valid: five bytes with the continuation bit. */
const badRemainingLength = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]);

type Mutation = (bytes: Buffer) => Buffer;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, xor]): Mutation => (b) => {
    const out = Buffer.from(b);
    if (out.length > 0) out[at % out.length]! ^= xor;
    return out;
  }),
  fc.nat().map((at): Mutation => (b) => b.subarray(0, b.length === 0 ? 0 : at % b.length)),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((extra): Mutation => (b) => Buffer.concat([b, Buffer.from(extra)])),
  fc.constant<Mutation>((b) => Buffer.concat([b.subarray(0, 1), badRemainingLength, b.subarray(2)])),
  fc.integer({ min: 1, max: 15 }).map((flags): Mutation => (b) => {
    const out = Buffer.from(b);
    if (out.length > 0) out[0] = (out[0]! & 0xf0) | flags;
    return out;
  }),
  // Ill-formed UTF-8 (an encoded surrogate) in place of the first bytes after the header.
  fc.constant<Mutation>((b) => {
    const out = Buffer.from(b);
    if (out.length >= 7) out.set([0xed, 0xa0, 0x80], 4);
    return out;
  }),
  // The Remaining Length claims more than there is, or less.
  fc.integer({ min: 0, max: 127 }).map((length): Mutation => (b) => {
    const out = Buffer.from(b);
    if (out.length > 1) out[1] = length;
    return out;
  }),
);

/** Bytes to send after a valid CONNECT: valid packets, mutated packets, or noise. */
export function hostileBytes(version: Version): fc.Arbitrary<Buffer> {
  const valid = packetObject(version)
    .map((p) => encode(p, version))
    .filter((b): b is Buffer => b !== undefined);
  return fc.oneof(
    { weight: 2, arbitrary: fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([bytes, ms]) => ms.reduce((b, m) => m(b), bytes)) },
    { weight: 1, arbitrary: fc.array(valid, { minLength: 1, maxLength: 4 }).map((packets) => Buffer.concat(packets)) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 80 }).map((bytes) => Buffer.from(bytes)) },
  );
}

export function connectBytes(version: Version, clientId: string, keepalive = 5): Buffer {
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive, clientId }, { protocolVersion: version });
}

/**
 * Does mqtt-packet itself (an independent parser, laxer than the broker) find these bytes
 * malformed? Then the broker must close the connection. `undefined`: it parses, or wants more bytes.
 */
export function mqttPacketRejects(bytes: Buffer, version: Version): boolean {
  const parser = mqttPacket.parser({ protocolVersion: version });
  let failed = false;
  parser.on('error', () => (failed = true));
  parser.parse(bytes);
  return failed;
}
