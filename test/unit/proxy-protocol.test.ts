/** The PROXY protocol v2 header, from golden bytes laid out as haproxy's proxy-protocol.txt (2.2) gives them. */
import { describe, expect, it } from 'vitest';
import { proxyHeaderLength, proxySourceAddress, ProxyProtocolError } from '../../shared/listener/proxy-protocol';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const SIGNATURE = '0d0a0d0a 000d0a51 5549540a';

// PROXY, TCP over IPv4: 192.0.2.1:54321 -> 198.51.100.10:1883
const IPV4 = hex(`${SIGNATURE} 21 11 000c  c0000201 c633640a d431 075b`);
// The same with a TLV after the addresses (0xEA, as AWS uses for its own, 5 bytes): length 12 + 3 + 5
const IPV4_WITH_TLV = hex(`${SIGNATURE} 21 11 0014  c0000201 c633640a d431 075b  ea 0005 01 76706365`);
// PROXY, TCP over IPv6: [2001:db8::1]:54321 -> [::1]:1883
const IPV6 = hex(`${SIGNATURE} 21 21 0024  20010db8000000000000000000000001 00000000000000000000000000000001 d431 075b`);
// LOCAL (a health check from the proxy itself), no addresses
const LOCAL = hex(`${SIGNATURE} 20 00 0000`);
// PROXY with an unspecified family (UNSPEC), and with AF_UNIX: no IP address to take
const UNSPEC = hex(`${SIGNATURE} 21 00 0000`);
const UNIX = Buffer.concat([hex(`${SIGNATURE} 21 31 00d8`), Buffer.alloc(216)]);

describe('proxyHeaderLength', () => {
  it('reads the length of the whole header from its first 16 bytes', () => {
    expect(proxyHeaderLength(IPV4)).toBe(16 + 12);
    expect(proxyHeaderLength(IPV4.subarray(0, 16))).toBe(28);
    expect(proxyHeaderLength(IPV4_WITH_TLV)).toBe(16 + 20);
    expect(proxyHeaderLength(IPV6)).toBe(16 + 36);
    expect(proxyHeaderLength(LOCAL)).toBe(16);
  });

  it('is undefined while fewer than 16 bytes of a header have arrived', () => {
    for (const n of [0, 1, 11, 12, 13, 15]) expect(proxyHeaderLength(IPV4.subarray(0, n))).toBeUndefined();
  });

  it('throws at the first byte that cannot begin the signature: MQTT, HTTP, PROXY v1 text', () => {
    const connect = hex('10 0c 00044d515454 04 02 003c 0000');
    for (const bytes of [connect, Buffer.from('GET /mqtt HTTP/1.1\r\n'), Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.10 54321 1883\r\n')]) {
      expect(() => proxyHeaderLength(bytes.subarray(0, 1))).toThrow(ProxyProtocolError);
    }
    // A signature correct for 11 bytes and wrong on the 12th
    expect(() => proxyHeaderLength(hex('0d0a0d0a 000d0a51 554954 0b'))).toThrow(ProxyProtocolError);
  });

  it('throws for a version other than 2 and a command other than LOCAL or PROXY', () => {
    expect(() => proxyHeaderLength(hex(`${SIGNATURE} 11 11 000c`))).toThrow(/version 1/);
    expect(() => proxyHeaderLength(hex(`${SIGNATURE} 22 11 000c`))).toThrow(/command 2/);
  });
});

describe('proxySourceAddress', () => {
  it('gives the IPv4 source address of a PROXY header', () => {
    expect(proxySourceAddress(IPV4)).toBe('192.0.2.1');
  });

  it('skips the TLVs after the addresses', () => {
    expect(proxySourceAddress(IPV4_WITH_TLV)).toBe('192.0.2.1');
  });

  it('gives the IPv6 source address in its short form (RFC 5952)', () => {
    expect(proxySourceAddress(IPV6)).toBe('2001:db8::1');
  });

  it('names no address for LOCAL, an unspecified family or a Unix socket: the connection itself is the client', () => {
    expect(proxySourceAddress(LOCAL)).toBeUndefined();
    expect(proxySourceAddress(UNSPEC)).toBeUndefined();
    expect(proxySourceAddress(UNIX)).toBeUndefined();
  });

  it('throws when the header is cut short, or its length is too small for its addresses', () => {
    expect(() => proxySourceAddress(IPV4.subarray(0, 20))).toThrow(ProxyProtocolError);
    expect(() => proxySourceAddress(hex(`${SIGNATURE} 21 11 0004  c0000201`))).toThrow(/IPv4 addresses cut short/);
    expect(() => proxySourceAddress(hex(`${SIGNATURE} 21 21 000c  c0000201 c633640a d431 075b`))).toThrow(/IPv6 addresses cut short/);
  });

  it('writes IPv6 addresses as RFC 5952 does: the longest run of zero groups (the first of equals) as ::, a lone zero group kept', () => {
    const v6 = (address: string): string | undefined => proxySourceAddress(hex(`${SIGNATURE} 21 21 0024 ${address} ${'00'.repeat(16)} 0000 0000`));
    expect(v6('00010000000000010000000000000001')).toBe('1:0:0:1::1');
    expect(v6('00010000000000010000000000010001')).toBe('1::1:0:0:1:1');
    expect(v6('00000000000000000000000000000000')).toBe('::');
    expect(v6('00010002000300040005000600070008')).toBe('1:2:3:4:5:6:7:8');
    expect(v6('00010000000200030004000500060007')).toBe('1:0:2:3:4:5:6:7');
    expect(v6('fe800000000000000000000000000abc')).toBe('fe80::abc');
  });
});
