import { describe, expect, it, vi } from 'vitest';
import { readFixedHeader } from '../../shared/protocol/fixed-header';
import { MqttFramer } from '../../shared/protocol/framer';
import { ReasonCode } from '../../shared/protocol/reason-codes';
import { expectProtocolError } from './expect-protocol-error';

const PINGREQ = Buffer.from([0xc0, 0x00]);
// PUBLISH QoS 0, topic "a/b", payload "hi"
const PUBLISH = Buffer.from([0x30, 0x07, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x68, 0x69]);
// SUBSCRIBE packet id 1 to "a/#" at QoS 1
const SUBSCRIBE = Buffer.from([0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 0x61, 0x2f, 0x23, 0x01]);
const DISCONNECT = Buffer.from([0xe0, 0x00]);

/** A PUBLISH whose remaining length is `remainingLength`, filled with zero bytes. */
function packetWithRemainingLength(remainingLength: number): Buffer {
  const length: number[] = [];
  let rest = remainingLength;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    length.push(byte);
  } while (rest > 0);
  return Buffer.concat([Buffer.from([0x30, ...length]), Buffer.alloc(remainingLength)]);
}

describe('readFixedHeader', () => {
  it('is undefined while the header is incomplete', () => {
    expect(readFixedHeader(Buffer.alloc(0))).toBeUndefined();
    expect(readFixedHeader(Buffer.from([0x30]))).toBeUndefined();
    expect(readFixedHeader(Buffer.from([0x30, 0x80]))).toBeUndefined();
    expect(readFixedHeader(Buffer.from([0x30, 0x80, 0x80]))).toBeUndefined();
    expect(readFixedHeader(Buffer.from([0x30, 0x80, 0x80, 0x80]))).toBeUndefined();
  });

  it('reads a remaining length of 0 in one byte', () => {
    expect(readFixedHeader(PINGREQ)).toEqual({ headerLength: 2, remainingLength: 0 });
  });

  it('reads a 1-byte remaining length up to 127', () => {
    expect(readFixedHeader(Buffer.from([0x30, 0x7f]))).toEqual({ headerLength: 2, remainingLength: 127 });
  });

  it('reads a 2-byte remaining length: 128 and 16,383', () => {
    expect(readFixedHeader(Buffer.from([0x30, 0x80, 0x01]))).toEqual({ headerLength: 3, remainingLength: 128 });
    expect(readFixedHeader(Buffer.from([0x30, 0xff, 0x7f]))).toEqual({ headerLength: 3, remainingLength: 16383 });
  });

  it('reads a 3-byte remaining length: 16,384 and 2,097,151', () => {
    expect(readFixedHeader(Buffer.from([0x30, 0x80, 0x80, 0x01]))).toEqual({ headerLength: 4, remainingLength: 16384 });
    expect(readFixedHeader(Buffer.from([0x30, 0xff, 0xff, 0x7f]))).toEqual({ headerLength: 4, remainingLength: 2097151 });
  });

  it('reads a 4-byte remaining length: 2,097,152 and the maximum 268,435,455', () => {
    expect(readFixedHeader(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x01]))).toEqual({ headerLength: 5, remainingLength: 2097152 });
    expect(readFixedHeader(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))).toEqual({ headerLength: 5, remainingLength: 268435455 });
  });

  it('reads the header at an offset', () => {
    const bytes = Buffer.concat([PINGREQ, Buffer.from([0x30, 0x80, 0x01])]);
    expect(readFixedHeader(bytes, 2)).toEqual({ headerLength: 3, remainingLength: 128 });
    expect(readFixedHeader(bytes, 4)).toBeUndefined();
  });

  it('[MQTT-1.5.5-1] throws Malformed Packet (0x81) for a remaining length of five bytes', () => {
    expectProtocolError(() => readFixedHeader(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01])), ReasonCode.MalformedPacket);
  });

  it('[MQTT-1.5.5-1] throws as soon as the fourth length byte says another follows', () => {
    expectProtocolError(() => readFixedHeader(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff])), ReasonCode.MalformedPacket);
  });
});

describe('MqttFramer', () => {
  it('returns a whole packet pushed in one chunk', () => {
    const framer = new MqttFramer(1024);
    expect(framer.push(PUBLISH)).toEqual([PUBLISH]);
    expect(framer.pendingBytes).toBe(0);
  });

  it('returns packets split across chunks byte by byte whole and in order', () => {
    const framer = new MqttFramer(1024);
    const stream = Buffer.concat([SUBSCRIBE, PINGREQ, PUBLISH, DISCONNECT]);
    const out: Buffer[] = [];
    for (const byte of stream) out.push(...framer.push(Buffer.from([byte])));
    expect(out).toEqual([SUBSCRIBE, PINGREQ, PUBLISH, DISCONNECT]);
    expect(framer.pendingBytes).toBe(0);
  });

  it('returns a packet only once its last byte arrives', () => {
    const framer = new MqttFramer(1024);
    for (let i = 0; i < PUBLISH.length - 1; i++) expect(framer.push(PUBLISH.subarray(i, i + 1))).toEqual([]);
    expect(framer.push(PUBLISH.subarray(PUBLISH.length - 1))).toEqual([PUBLISH]);
  });

  it('returns several packets from one chunk, in order', () => {
    const framer = new MqttFramer(1024);
    expect(framer.push(Buffer.concat([PINGREQ, PUBLISH, SUBSCRIBE, PINGREQ]))).toEqual([PINGREQ, PUBLISH, SUBSCRIBE, PINGREQ]);
    expect(framer.pendingBytes).toBe(0);
  });

  it('returns the whole packets of a chunk and keeps the start of the next', () => {
    const framer = new MqttFramer(1024);
    expect(framer.push(Buffer.concat([PINGREQ, PUBLISH, SUBSCRIBE.subarray(0, 4)]))).toEqual([PINGREQ, PUBLISH]);
    expect(framer.pendingBytes).toBe(4);
    expect(framer.push(Buffer.concat([SUBSCRIBE.subarray(4), DISCONNECT]))).toEqual([SUBSCRIBE, DISCONNECT]);
    expect(framer.pendingBytes).toBe(0);
  });

  it('frames packets in chunks cut at every possible point', () => {
    const stream = Buffer.concat([PUBLISH, SUBSCRIBE, PINGREQ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const framer = new MqttFramer(1024);
      const out = [...framer.push(stream.subarray(0, cut)), ...framer.push(stream.subarray(cut))];
      expect(out).toEqual([PUBLISH, SUBSCRIBE, PINGREQ]);
    }
  });

  it('frames packets whose remaining length takes 2 and 3 bytes', () => {
    const framer = new MqttFramer(1 << 20);
    const twoByte = packetWithRemainingLength(128);
    const threeByte = packetWithRemainingLength(16384);
    expect(twoByte.length).toBe(1 + 2 + 128);
    expect(threeByte.length).toBe(1 + 3 + 16384);
    const stream = Buffer.concat([twoByte, threeByte, PINGREQ]);
    const out = [...framer.push(stream.subarray(0, 100)), ...framer.push(stream.subarray(100, 5000)), ...framer.push(stream.subarray(5000))];
    expect(out).toEqual([twoByte, threeByte, PINGREQ]);
  });

  it('counts the bytes of an incomplete packet in pendingBytes', () => {
    const framer = new MqttFramer(1024);
    expect(framer.pendingBytes).toBe(0);
    framer.push(PUBLISH.subarray(0, 1));
    expect(framer.pendingBytes).toBe(1);
    framer.push(PUBLISH.subarray(1, 5));
    expect(framer.pendingBytes).toBe(5);
    framer.push(Buffer.concat([PUBLISH.subarray(5), PINGREQ.subarray(0, 1)]));
    expect(framer.pendingBytes).toBe(1);
    framer.push(PINGREQ.subarray(1));
    expect(framer.pendingBytes).toBe(0);
  });

  it('accepts an empty chunk', () => {
    const framer = new MqttFramer(1024);
    expect(framer.push(Buffer.alloc(0))).toEqual([]);
    framer.push(PUBLISH.subarray(0, 3));
    expect(framer.push(Buffer.alloc(0))).toEqual([]);
    expect(framer.pendingBytes).toBe(3);
  });

  it('accepts a packet exactly the maximum size, header included', () => {
    const framer = new MqttFramer(PUBLISH.length);
    expect(framer.push(PUBLISH)).toEqual([PUBLISH]);
  });

  it('throws Packet Too Large (0x95) for a packet one byte over the maximum size', () => {
    const framer = new MqttFramer(PUBLISH.length - 1);
    expectProtocolError(() => framer.push(PUBLISH), ReasonCode.PacketTooLarge);
  });

  it('throws Packet Too Large (0x95) as soon as the header of an oversized packet is read', () => {
    const framer = new MqttFramer(1024);
    expect(framer.push(Buffer.from([0x30, 0x80]))).toEqual([]);
    // Remaining length 16,384: the payload has not arrived, but the header already says too large
    expectProtocolError(() => framer.push(Buffer.from([0x80, 0x01])), ReasonCode.PacketTooLarge);
  });

  it('throws Packet Too Large (0x95) for an oversized packet behind whole packets in the same chunk', () => {
    const framer = new MqttFramer(1024);
    expectProtocolError(() => framer.push(Buffer.concat([PINGREQ, Buffer.from([0x30, 0x80, 0x80, 0x80, 0x01])])), ReasonCode.PacketTooLarge);
  });

  it('frames a 256 KiB packet pushed one byte at a time, whole, and holds every byte until then', () => {
    const big = packetWithRemainingLength(256 * 1024 - 4);
    const framer = new MqttFramer(big.length);
    for (let i = 0; i < big.length - 1; i++) {
      if (framer.push(big.subarray(i, i + 1)).length > 0) throw new Error(`a packet after ${i + 1} bytes`);
    }
    expect(framer.pendingBytes).toBe(big.length - 1);
    const [packet, ...more] = framer.push(big.subarray(big.length - 1));
    expect(packet?.equals(big)).toBe(true);
    expect(more).toHaveLength(0);
    expect(framer.pendingBytes).toBe(0);
  });

  it('copies a packet that arrives in many small chunks once, not once per chunk', () => {
    const big = packetWithRemainingLength(256 * 1024 - 4);
    const stream = Buffer.concat([big, PINGREQ, big]);
    const framer = new MqttFramer(big.length);
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += 100) out.push(...framer.push(stream.subarray(i, i + 100)));
      expect(out.map((packet) => packet.length)).toEqual([big.length, PINGREQ.length, big.length]);
      expect(out[0]!.equals(big) && out[1]!.equals(PINGREQ) && out[2]!.equals(big)).toBe(true);
      // Each joined packet is copied once; reading a fixed header split across chunks copies at most 5 bytes.
      const copied = concat.mock.results.reduce((sum, result) => sum + (result.value as Buffer).length, 0);
      expect(copied).toBeLessThanOrEqual(2 * big.length + 2 * 5);
    } finally {
      concat.mockRestore();
    }
  });

  it('frames a packet whose fixed header is split across several chunks', () => {
    const threeByte = packetWithRemainingLength(16384);
    const framer = new MqttFramer(1 << 20);
    expect(framer.push(threeByte.subarray(0, 1))).toEqual([]);
    expect(framer.push(threeByte.subarray(1, 2))).toEqual([]);
    expect(framer.push(threeByte.subarray(2, 3))).toEqual([]);
    expect(framer.push(Buffer.concat([threeByte.subarray(3), PINGREQ]))).toEqual([threeByte, PINGREQ]);
  });

  it('holds the first packet to its own, lower limit, and the packets after it (in the same chunk too) to the maximum', () => {
    expectProtocolError(() => new MqttFramer(1024, 4).push(PUBLISH), ReasonCode.PacketTooLarge);
    // Refused on the announced length, before the rest arrives
    expectProtocolError(() => new MqttFramer(1024, 4).push(PUBLISH.subarray(0, 2)), ReasonCode.PacketTooLarge);
    expect(new MqttFramer(1024, 4).push(Buffer.concat([PINGREQ, PUBLISH]))).toEqual([PINGREQ, PUBLISH]);
    const framer = new MqttFramer(1024, 4);
    expect(framer.push(PINGREQ)).toEqual([PINGREQ]);
    expect(framer.push(SUBSCRIBE)).toEqual([SUBSCRIBE]);
    expectProtocolError(() => new MqttFramer(8, 1024).push(PUBLISH), ReasonCode.PacketTooLarge);
  });

  it('[MQTT-1.5.5-1] throws Malformed Packet (0x81) for a remaining length of five bytes', () => {
    const framer = new MqttFramer(Number.MAX_SAFE_INTEGER);
    expectProtocolError(() => framer.push(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01])), ReasonCode.MalformedPacket);
  });
});

describe('MqttFramer: the first byte of a packet', () => {
  it('[MQTT-2.2.2-2] throws Malformed Packet as soon as a reserved type or wrong flags arrive, before the rest', () => {
    // type 0; PUBREL without its 0x2 flags; PINGREQ with a flag; PUBLISH QoS 3 - each with a length still to come
    for (const first of [0x00, 0x60, 0xc1, 0x36]) {
      expectProtocolError(() => new MqttFramer(1024).push(Buffer.from([first])), ReasonCode.MalformedPacket);
    }
    expectProtocolError(() => new MqttFramer(1024).push(Buffer.concat([PINGREQ, Buffer.from([0x80, 0x7f])])), ReasonCode.MalformedPacket);
  });

  it('accepts the fixed flags of every type, and PUBLISH with any DUP, QoS 0-2 and RETAIN', () => {
    for (const first of [0x10, 0x20, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xa2, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0x30, 0x33, 0x3d]) {
      expect(new MqttFramer(1024).push(Buffer.from([first, 0]))).toHaveLength(1);
    }
  });
});
