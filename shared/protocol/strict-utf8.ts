/**
 * mqtt-packet decodes strings with Buffer#toString, which replaces ill-formed UTF-8 with U+FFFD
 * instead of failing. MQTT requires the receiver to close the connection instead: [MQTT-1.5.3-1]
 * (ill-formed UTF-8, including encoded surrogates U+D800..U+DFFF) and [MQTT-1.5.3-2] (U+0000);
 * 5.0 [MQTT-1.5.4-1] and [MQTT-1.5.4-2]. This wraps the parser's one string reader (every
 * UTF-8 string field and property goes through it) to check the bytes it read.
 */
const fatal = new TextDecoder('utf-8', { fatal: true });

interface StringReader {
  _pos: number;
  _list: { slice(start: number, end: number): Buffer };
  _parseString(...args: unknown[]): string | null;
}

/** Makes `parser` fail on ill-formed strings; `onInvalid` says why (the caller throws Malformed Packet). */
export function rejectIllFormedStrings(parser: object, onInvalid: (reason: string) => void): void {
  const reader = parser as StringReader;
  const read = reader._parseString;
  if (typeof read !== 'function') throw new Error('mqtt-packet parser has no _parseString: update shared/protocol/strict-utf8.ts');
  reader._parseString = function (this: StringReader, ...args: unknown[]): string | null {
    const start = this._pos;
    const result = read.apply(this, args);
    if (result === null) return result;
    const bytes = this._list.slice(start + 2, this._pos);
    if (bytes.includes(0)) onInvalid('a UTF-8 string contains U+0000');
    else {
      try {
        fatal.decode(bytes);
      } catch {
        onInvalid('a UTF-8 string is ill-formed');
      }
    }
    return result;
  };
}
