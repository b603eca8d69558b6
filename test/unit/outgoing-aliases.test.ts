/** The listener's outgoing topic aliases, on bytes as the delivery endpoint hands them over. */
import { describe, expect, it } from 'vitest';
import { decodePacket, encodePacket, type Packet, type PublishPacket } from '../../shared/protocol/codec';
import { OutgoingAliases } from '../../shared/listener/outgoing-aliases';

const publish = (topic: string, payload = 'x', properties: PublishPacket['properties'] = {}): Buffer =>
  encodePacket({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, dup: false, retain: false, properties }, 5);

/** Splits bytes into packets the way a client would read them. */
function packets(bytes: Buffer): Packet[] {
  const out: Packet[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    let length = 0;
    let multiplier = 1;
    let i = 1;
    for (; ; i++) {
      const byte = bytes[offset + i]!;
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if ((byte & 0x80) === 0) break;
    }
    out.push(decodePacket(bytes.subarray(offset, offset + 1 + i + length), 5));
    offset += 1 + i + length;
  }
  return out;
}

const view = (p: Packet) => {
  // mqtt-packet decodes the topic of a packet that has none as null
  const publish = p as PublishPacket;
  return [publish.cmd, publish.topic, publish.properties?.topicAlias, publish.payload?.toString()];
};

describe('OutgoingAliases', () => {
  it('[MQTT-3.3.2-11] sets an alias on first use, uses it afterwards across writes, within the maximum; other packets pass untouched', () => {
    const aliases = new OutgoingAliases(1, undefined);
    const suback = encodePacket({ cmd: 'suback', messageId: 1, granted: [0] }, 5);
    const first = aliases.rewrite(Buffer.concat([suback, publish('a/b', '1')]));
    const later = aliases.rewrite(Buffer.concat([publish('a/b', '2'), publish('c', '3')]));
    expect([...packets(first), ...packets(later)].map(view)).toEqual([
      ['suback', null, undefined, undefined],
      ['publish', 'a/b', 1, '1'],
      ['publish', '', 1, '2'],
      ['publish', 'c', undefined, '3'],
    ]);
  });

  it('keeps user properties and other properties as they were', () => {
    const aliases = new OutgoingAliases(4, undefined);
    const [out] = packets(aliases.rewrite(publish('t', 'x', { userProperties: { a: '1', b: ['2', '3'] }, contentType: 'text/plain', messageExpiryInterval: 60 })));
    expect((out as PublishPacket).properties).toEqual({ userProperties: { a: '1', b: ['2', '3'] }, contentType: 'text/plain', messageExpiryInterval: 60, topicAlias: 1 });
  });

  it('[MQTT-3.1.2-24] sets no alias that would take a packet past the client\'s Maximum Packet Size', () => {
    const bytes = publish('t/1', 'payload');
    const aliases = new OutgoingAliases(4, bytes.length + 2);
    expect(aliases.rewrite(bytes)).toBe(bytes);
  });

  it('stops aliasing once a PUBLISH arrives with an alias of its own (a handler of an older version), so no alias means two topics', () => {
    const aliases = new OutgoingAliases(4, undefined);
    aliases.rewrite(publish('mine'));
    const theirs = publish('theirs', 'x', { topicAlias: 1 });
    expect(aliases.rewrite(theirs)).toBe(theirs);
    expect(packets(aliases.rewrite(publish('mine'))).map(view)).toEqual([['publish', 'mine', undefined, 'x']]);
  });

  it('passes bytes it cannot frame or decode as they are', () => {
    const aliases = new OutgoingAliases(4, undefined);
    const partial = publish('t').subarray(0, 3);
    expect(aliases.rewrite(partial)).toBe(partial);
  });
});
