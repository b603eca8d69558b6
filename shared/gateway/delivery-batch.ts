/**
 * The listener's batch delivery: bytes for many of one task's connections in one request
 * (`POST /@connections`), so a fan-out to a thousand devices on one task is one HTTP call, not a
 * thousand. Body: for each connection, its id's length (2 bytes), the id (UTF-8), the data's
 * length (4 bytes), the data. Answer: `{ "gone": [ids] }`, the connections the task no longer has.
 *
 * A request body is at most MAX_DELIVERY_REQUEST_BYTES, on this route and on
 * `POST /@connections/{id}`: the listener answers 413 beyond it, and the gateway client splits
 * what it sends to fit (encodeDeliveryBatches).
 */
import { groupPackets } from './text-frames';

/**
 * The largest request body the delivery endpoint accepts. A packet the broker sends is never
 * near it: every packet reached a handler in a Lambda invocation, whose payload is at most 6 MB.
 */
export const MAX_DELIVERY_REQUEST_BYTES = 8 * 1024 * 1024;

const entryOverhead = (connectionId: string): number => 6 + Buffer.byteLength(connectionId);

export function encodeDeliveryBatch(deliveries: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [connectionId, data] of deliveries) {
    const id = Buffer.from(connectionId);
    const header = Buffer.alloc(6 + id.length);
    header.writeUInt16BE(id.length, 0);
    id.copy(header, 2);
    header.writeUInt32BE(data.length, 2 + id.length);
    parts.push(header, data);
  }
  return Buffer.concat(parts);
}

/**
 * The deliveries as batch bodies of at most `maxBytes` each, in order. A connection's bytes that
 * do not fit in one body are split between whole packets, its pieces kept in order (the bodies
 * are sent one after another).
 */
export function encodeDeliveryBatches(deliveries: ReadonlyArray<readonly [string, Buffer]>, maxBytes = MAX_DELIVERY_REQUEST_BYTES): Buffer[] {
  const bodies: Buffer[] = [];
  let current: Array<readonly [string, Buffer]> = [];
  let size = 0;
  for (const [connectionId, data] of deliveries) {
    const overhead = entryOverhead(connectionId);
    for (const piece of groupPackets(data, maxBytes - overhead)) {
      if (current.length > 0 && size + overhead + piece.length > maxBytes) {
        bodies.push(encodeDeliveryBatch(current));
        current = [];
        size = 0;
      }
      current.push([connectionId, piece]);
      size += overhead + piece.length;
    }
  }
  if (current.length > 0) bodies.push(encodeDeliveryBatch(current));
  return bodies;
}

/** The deliveries in a batch body; throws on a body that is cut short. */
export function decodeDeliveryBatch(body: Buffer): Array<[string, Buffer]> {
  const deliveries: Array<[string, Buffer]> = [];
  let offset = 0;
  while (offset < body.length) {
    if (offset + 2 > body.length) throw new Error('delivery batch cut short');
    const idLength = body.readUInt16BE(offset);
    const idEnd = offset + 2 + idLength;
    if (idEnd + 4 > body.length) throw new Error('delivery batch cut short');
    const connectionId = body.toString('utf8', offset + 2, idEnd);
    const dataLength = body.readUInt32BE(idEnd);
    const dataEnd = idEnd + 4 + dataLength;
    if (dataEnd > body.length) throw new Error('delivery batch cut short');
    deliveries.push([connectionId, body.subarray(idEnd + 4, dataEnd)]);
    offset = dataEnd;
  }
  return deliveries;
}

export function parseGoneList(text: string): Set<string> {
  const parsed = JSON.parse(text) as { gone?: unknown };
  return new Set(Array.isArray(parsed.gone) ? parsed.gone.map(String) : []);
}
