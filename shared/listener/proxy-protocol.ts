/**
 * PROXY protocol version 2 (the binary header a Network Load Balancer puts before a connection's
 * bytes when the target group has proxy_protocol_v2 on): the client's address, which the NLB's
 * IP targets see only this way. Layout (haproxy's proxy-protocol.txt, section 2.2):
 *   12 bytes  signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *   1 byte    version (high nibble, 2) and command (low nibble: 0 LOCAL, 1 PROXY)
 *   1 byte    address family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) and transport
 *   2 bytes   length of what follows (big-endian): the addresses, then TLVs (skipped here)
 *   INET: source and destination IPv4, source and destination port (12 bytes); INET6: 36 bytes.
 * Version 1 (the text form) is not accepted: the NLB sends version 2.
 */

export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const FIXED_LENGTH = 16;
const COMMAND_LOCAL = 0x0;
const COMMAND_PROXY = 0x1;
const FAMILY_INET = 0x1;
const FAMILY_INET6 = 0x2;

export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError';
}

/**
 * The length of the whole header, from its first 16 bytes; undefined while fewer have arrived.
 * Throws as soon as the bytes so far cannot begin a version 2 header.
 */
export function proxyHeaderLength(bytes: Buffer): number | undefined {
  const signature = bytes.subarray(0, PROXY_V2_SIGNATURE.length);
  if (!signature.equals(PROXY_V2_SIGNATURE.subarray(0, signature.length))) {
    throw new ProxyProtocolError('no PROXY protocol v2 signature');
  }
  if (bytes.length < FIXED_LENGTH) return undefined;
  const version = bytes[12]! >> 4;
  const command = bytes[12]! & 0x0f;
  if (version !== 2) throw new ProxyProtocolError(`PROXY protocol version ${version}, not 2`);
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) throw new ProxyProtocolError(`PROXY protocol command ${command}`);
  return FIXED_LENGTH + bytes.readUInt16BE(14);
}

/**
 * The client's address in a whole header; undefined when the header names none (the LOCAL
 * command, as a load balancer's own health check sends, or an unspecified family): then the
 * connection's own peer is the client.
 */
export function proxySourceAddress(header: Buffer): string | undefined {
  const length = proxyHeaderLength(header);
  if (length === undefined || header.length < length) throw new ProxyProtocolError('PROXY protocol header incomplete');
  if ((header[12]! & 0x0f) === COMMAND_LOCAL) return undefined;
  const family = header[13]! >> 4;
  const addresses = header.subarray(FIXED_LENGTH, length);
  if (family === FAMILY_INET) {
    if (addresses.length < 12) throw new ProxyProtocolError('PROXY protocol IPv4 addresses cut short');
    return [...addresses.subarray(0, 4)].join('.');
  }
  if (family === FAMILY_INET6) {
    if (addresses.length < 36) throw new ProxyProtocolError('PROXY protocol IPv6 addresses cut short');
    return formatIpv6(addresses.subarray(0, 16));
  }
  return undefined;
}

/** RFC 5952 text: lower-case hex groups, the longest run of two or more zero groups as "::". */
function formatIpv6(bytes: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i).toString(16));
  let best = { start: -1, length: 1 };
  for (let start = 0; start < 8; start++) {
    let end = start;
    while (end < 8 && groups[end] === '0') end++;
    if (end - start > best.length) best = { start, length: end - start };
  }
  if (best.start < 0) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.length).join(':')}`;
}
