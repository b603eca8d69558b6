/**
 * The listener's batch delivery: bytes for many of one task's connections in one request
 * (`POST /@connections`), so a fan-out to a thousand devices on one task is one HTTP call, not a
 * thousand. Body: for each connection, its id's length (2 bytes), the id (UTF-8), the data's
 * length (4 bytes), the data. Answer: `{ "gone": [ids] }`, the connections the task no longer has.
 */

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
