import { describe, expect, it } from 'vitest';
import { decodePacket, encodePacket, type Packet, type ProtocolVersion, type QoS } from '../../shared/protocol/codec';
import { ReasonCode } from '../../shared/protocol/reason-codes';
import { expectProtocolError } from './expect-protocol-error';

/** A packet as mqtt-packet's parser reports it: the fixed header's flags and remaining length too. */
type DecodedPacket = Packet & { retain?: boolean; qos?: QoS; dup?: boolean; length: number };

/** The bytes of a UTF-8 string, to spread into an annotated byte array. */
const utf8 = (text: string): number[] => [...Buffer.from(text, 'utf8')];

/** A packet object and its annotated bytes, checked both ways (mqtt-packet's test.js style). */
function golden(name: string, version: ProtocolVersion, packet: DecodedPacket, bytes: number[]): void {
  describe(name, () => {
    it('decodes the bytes to the packet', () => {
      expect(withoutUnsetFields(decodePacket(Uint8Array.from(bytes), version))).toEqual(packet);
    });

    it('encodes the packet to the bytes', () => {
      expect(encodePacket(packet, version).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
    });
  });
}

/** The parser leaves `topic` and `payload` null on packets that have none. */
function withoutUnsetFields(packet: Packet): Packet {
  if (packet.cmd === 'publish') return packet;
  return Object.fromEntries(Object.entries(packet).filter(([, value]) => value !== null)) as Packet;
}

describe('golden bytes', () => {
  golden(
    'CONNECT 3.1.1 with will, username and password',
    4,
    {
      cmd: 'connect',
      retain: false,
      qos: 0,
      dup: false,
      length: 61,
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      clientId: 'sensor-1',
      will: { topic: 'status/sensor-1', payload: Buffer.from('offline'), qos: 1, retain: true },
      username: 'alice',
      password: Buffer.from('secret'),
    },
    [
      0x10, 61, // Header (connect, remaining length 61)
      0, 4, ...utf8('MQTT'), // Protocol name
      4, // Protocol level (3.1.1)
      0xee, // Connect flags: username, password, will retain, will QoS 1, will, clean session
      0, 60, // Keep alive (60 s)
      0, 8, ...utf8('sensor-1'), // Client identifier
      0, 15, ...utf8('status/sensor-1'), // Will topic
      0, 7, ...utf8('offline'), // Will payload
      0, 5, ...utf8('alice'), // User name
      0, 6, ...utf8('secret'), // Password
    ],
  );

  golden(
    'CONNECT 5.0 with properties',
    5,
    {
      cmd: 'connect',
      retain: false,
      qos: 0,
      dup: false,
      length: 45,
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      keepalive: 30,
      properties: {
        sessionExpiryInterval: 3600,
        receiveMaximum: 20,
        maximumPacketSize: 65536,
        topicAliasMaximum: 10,
        userProperties: { region: 'eu' },
      },
      clientId: 'dev',
    },
    [
      0x10, 45, // Header (connect, remaining length 45)
      0, 4, ...utf8('MQTT'), // Protocol name
      5, // Protocol version (5.0)
      0x02, // Connect flags: clean start
      0, 30, // Keep alive (30 s)
      29, // Properties length
      0x11, 0, 0, 0x0e, 0x10, // Session expiry interval (3600 s)
      0x21, 0, 20, // Receive maximum (20)
      0x27, 0, 1, 0, 0, // Maximum packet size (65536)
      0x22, 0, 10, // Topic alias maximum (10)
      0x26, 0, 6, ...utf8('region'), 0, 2, ...utf8('eu'), // User property region=eu
      0, 3, ...utf8('dev'), // Client identifier
    ],
  );

  golden(
    'CONNACK 3.1.1 accepted, session present',
    4,
    { cmd: 'connack', retain: false, qos: 0, dup: false, length: 2, sessionPresent: true, returnCode: 0 },
    [
      0x20, 2, // Header (connack, remaining length 2)
      0x01, // Acknowledge flags: session present
      0x00, // Return code (accepted)
    ],
  );

  golden(
    'CONNACK 3.1.1 refused, not authorized',
    4,
    { cmd: 'connack', retain: false, qos: 0, dup: false, length: 2, sessionPresent: false, returnCode: 5 },
    [
      0x20, 2, // Header (connack, remaining length 2)
      0x00, // Acknowledge flags
      0x05, // Return code (not authorized)
    ],
  );

  golden(
    'CONNACK 5.0 with properties',
    5,
    {
      cmd: 'connack',
      retain: false,
      qos: 0,
      dup: false,
      length: 20,
      sessionPresent: false,
      reasonCode: ReasonCode.Success,
      properties: {
        receiveMaximum: 100,
        maximumQoS: 1,
        assignedClientIdentifier: 'auto-1',
        serverKeepAlive: 120,
      },
    },
    [
      0x20, 20, // Header (connack, remaining length 20)
      0x00, // Acknowledge flags
      0x00, // Reason code (success)
      17, // Properties length
      0x21, 0, 100, // Receive maximum (100)
      0x24, 1, // Maximum QoS (1)
      0x12, 0, 6, ...utf8('auto-1'), // Assigned client identifier
      0x13, 0, 120, // Server keep alive (120 s)
    ],
  );

  golden(
    'CONNACK 5.0 refused, not authorized',
    5,
    { cmd: 'connack', retain: false, qos: 0, dup: false, length: 3, sessionPresent: false, reasonCode: ReasonCode.NotAuthorized },
    [
      0x20, 3, // Header (connack, remaining length 3)
      0x00, // Acknowledge flags
      0x87, // Reason code (not authorized)
      0, // Properties length
    ],
  );

  golden(
    'PUBLISH QoS 0',
    4,
    { cmd: 'publish', retain: false, qos: 0, dup: false, length: 7, topic: 'a/b', payload: Buffer.from('hi') },
    [
      0x30, 7, // Header (publish, QoS 0, remaining length 7)
      0, 3, ...utf8('a/b'), // Topic name
      ...utf8('hi'), // Payload
    ],
  );

  golden(
    'PUBLISH QoS 0 retained, empty payload',
    4,
    { cmd: 'publish', retain: true, qos: 0, dup: false, length: 5, topic: 'a/b', payload: Buffer.alloc(0) },
    [
      0x31, 5, // Header (publish, QoS 0, retain, remaining length 5)
      0, 3, ...utf8('a/b'), // Topic name
    ],
  );

  golden(
    'PUBLISH QoS 1 with a packet identifier',
    4,
    { cmd: 'publish', retain: false, qos: 1, dup: false, length: 20, topic: 'sensors/temp', payload: Buffer.from('21.5'), messageId: 10 },
    [
      0x32, 20, // Header (publish, QoS 1, remaining length 20)
      0, 12, ...utf8('sensors/temp'), // Topic name
      0, 10, // Packet identifier (10)
      ...utf8('21.5'), // Payload
    ],
  );

  golden(
    'PUBLISH 5.0 QoS 1 redelivered, with a message expiry interval',
    5,
    {
      cmd: 'publish',
      retain: false,
      qos: 1,
      dup: true,
      length: 15,
      topic: 'a/b',
      payload: Buffer.from('hi'),
      messageId: 0x1234,
      properties: { messageExpiryInterval: 60 },
    },
    [
      0x3a, 15, // Header (publish, DUP, QoS 1, remaining length 15)
      0, 3, ...utf8('a/b'), // Topic name
      0x12, 0x34, // Packet identifier (0x1234)
      5, // Properties length
      0x02, 0, 0, 0, 60, // Message expiry interval (60 s)
      ...utf8('hi'), // Payload
    ],
  );

  golden(
    'SUBSCRIBE 3.1.1 to two filters',
    4,
    {
      cmd: 'subscribe',
      retain: false,
      qos: 1,
      dup: false,
      length: 24,
      messageId: 1,
      subscriptions: [
        { topic: 'sport/#', qos: 1 },
        { topic: '+/monitor', qos: 0 },
      ],
    },
    [
      0x82, 24, // Header (subscribe, reserved flags 0010, remaining length 24)
      0, 1, // Packet identifier (1)
      0, 7, ...utf8('sport/#'), // Topic filter
      0x01, // Requested QoS 1
      0, 9, ...utf8('+/monitor'), // Topic filter
      0x00, // Requested QoS 0
    ],
  );

  golden(
    'SUBSCRIBE 5.0 with a subscription identifier and options',
    5,
    {
      cmd: 'subscribe',
      retain: false,
      qos: 1,
      dup: false,
      length: 11,
      messageId: 2,
      properties: { subscriptionIdentifier: 7 },
      subscriptions: [{ topic: 'a/+', qos: 2, nl: true, rap: false, rh: 2 }],
    },
    [
      0x82, 11, // Header (subscribe, reserved flags 0010, remaining length 11)
      0, 2, // Packet identifier (2)
      2, // Properties length
      0x0b, 7, // Subscription identifier (7)
      0, 3, ...utf8('a/+'), // Topic filter
      0x26, // Options: QoS 2, no local, retain as published off, retain handling 2
    ],
  );

  golden(
    'SUBACK 3.1.1 granting QoS 1 and refusing one filter',
    4,
    { cmd: 'suback', retain: false, qos: 0, dup: false, length: 4, messageId: 1, granted: [1, 0x80] },
    [
      0x90, 4, // Header (suback, remaining length 4)
      0, 1, // Packet identifier (1)
      0x01, // Granted QoS 1
      0x80, // Failure
    ],
  );

  golden(
    'SUBACK 5.0 granting QoS 2 and refusing an invalid filter',
    5,
    { cmd: 'suback', retain: false, qos: 0, dup: false, length: 5, messageId: 2, granted: [2, ReasonCode.TopicFilterInvalid] },
    [
      0x90, 5, // Header (suback, remaining length 5)
      0, 2, // Packet identifier (2)
      0, // Properties length
      0x02, // Granted QoS 2
      0x8f, // Topic filter invalid
    ],
  );

  golden('PINGREQ', 4, { cmd: 'pingreq', retain: false, qos: 0, dup: false, length: 0 }, [
    0xc0, 0, // Header (pingreq, remaining length 0)
  ]);

  golden(
    'DISCONNECT 5.0 with a reason code',
    5,
    { cmd: 'disconnect', retain: false, qos: 0, dup: false, length: 2, reasonCode: ReasonCode.SessionTakenOver },
    [
      0xe0, 2, // Header (disconnect, remaining length 2)
      0x8e, // Reason code (session taken over)
      0, // Properties length
    ],
  );

  golden(
    'DISCONNECT 5.0 with a reason code and a reason string',
    5,
    {
      cmd: 'disconnect',
      retain: false,
      qos: 0,
      dup: false,
      length: 15,
      reasonCode: ReasonCode.KeepAliveTimeout,
      properties: { reasonString: 'keep alive' },
    },
    [
      0xe0, 15, // Header (disconnect, remaining length 15)
      0x8d, // Reason code (keep alive timeout)
      13, // Properties length
      0x1f, 0, 10, ...utf8('keep alive'), // Reason string
    ],
  );
});

describe('decodePacket', () => {
  it('decodes only the bytes of a view into a larger buffer', () => {
    const backing = Buffer.from([0xff, 0xff, 0xc0, 0x00, 0xff]);
    expect(decodePacket(backing.subarray(2, 4)).cmd).toBe('pingreq');
  });

  it('decodes by the protocol version passed in: only a 5.0 SUBACK has a properties length', () => {
    const suback = Uint8Array.from([0x90, 0x04, 0x00, 0x01, 0x00, 0x01]);
    expect(decodePacket(suback, 4)).toMatchObject({ cmd: 'suback', granted: [0, 1] });
    expect(decodePacket(suback, 5)).toMatchObject({ cmd: 'suback', granted: [1] });
  });

  it('throws Malformed Packet (0x81) for no bytes at all', () => {
    expectProtocolError(() => decodePacket(new Uint8Array(0)), ReasonCode.MalformedPacket);
  });

  it('throws Malformed Packet (0x81) for a packet cut short in its payload', () => {
    const publish = encodePacket({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('hi'), qos: 1, messageId: 10, retain: false, dup: false });
    expectProtocolError(() => decodePacket(publish.subarray(0, publish.length - 1)), ReasonCode.MalformedPacket);
    expectProtocolError(() => decodePacket(publish.subarray(0, 5)), ReasonCode.MalformedPacket);
  });

  it('throws Malformed Packet (0x81) for a packet cut short in its fixed header', () => {
    expectProtocolError(() => decodePacket(Uint8Array.from([0x30])), ReasonCode.MalformedPacket);
    expectProtocolError(() => decodePacket(Uint8Array.from([0x30, 0x80])), ReasonCode.MalformedPacket);
  });

  it('throws Malformed Packet (0x81) for two packets in one buffer', () => {
    expectProtocolError(() => decodePacket(Uint8Array.from([0xc0, 0x00, 0xc0, 0x00])), ReasonCode.MalformedPacket);
  });

  it('throws Malformed Packet (0x81) for a whole packet followed by the start of another', () => {
    expectProtocolError(() => decodePacket(Uint8Array.from([0xc0, 0x00, 0x30, 0x05, 0x00])), ReasonCode.MalformedPacket);
  });

  // The bytes are not exactly one packet; mqtt-packet's parser swallows a trailing fixed header
  // (type byte and remaining length) without counting it in the bytes it says are left.
  it.each([
    ['one trailing byte', [0xc0, 0x00, 0x30]],
    ['a trailing fixed header', [0xc0, 0x00, 0x30, 0x05]],
  ])('throws Malformed Packet (0x81) for a whole packet followed by %s', (_, bytes) => {
    expectProtocolError(() => decodePacket(Uint8Array.from(bytes)), ReasonCode.MalformedPacket);
  });

  it('throws Malformed Packet (0x81) for the reserved packet type 0', () => {
    expectProtocolError(() => decodePacket(Uint8Array.from([0x00, 0x00])), ReasonCode.MalformedPacket);
    expectProtocolError(() => decodePacket(Uint8Array.from([0x00, 0x00]), 5), ReasonCode.MalformedPacket);
  });

  it('[MQTT-2.2.2-2] throws Malformed Packet (0x81) for reserved fixed-header flags that are not as the spec lists them', () => {
    expectProtocolError(() => decodePacket(Uint8Array.from([0xc1, 0x00])), ReasonCode.MalformedPacket);
    expectProtocolError(() => decodePacket(Uint8Array.from([0x80, 0x06, 0, 1, 0, 1, 0x61, 0])), ReasonCode.MalformedPacket);
  });

  it('[MQTT-3.3.1-4] throws Malformed Packet (0x81) for a PUBLISH with both QoS bits set', () => {
    expectProtocolError(() => decodePacket(Uint8Array.from([0x36, 0x07, 0, 3, 0x61, 0x2f, 0x62, 0, 1])), ReasonCode.MalformedPacket);
  });
});
