/**
 * The browser adapter's sequence number on the API Gateway door: each text message a client
 * sends is `<sequence>:<base64 of whole MQTT packets>`, the sequence counting 1, 2, 3... per
 * connection. API Gateway may run two `$default` invocations of one connection at once and
 * gives messages no order of its own; with this number the handler restores the client's order.
 * ':' is not in the base64 alphabet, so a message without the prefix is told apart at once.
 *
 * Pure and free of Node APIs: the browser adapter (web/adapter.ts) imports it too.
 */
export const FIRST_SEQUENCE = 1;
const MAX_DIGITS = 15;
/** The longest prefix: 15 digits (below 2^53) and the separator. */
export const MAX_SEQUENCE_PREFIX_LENGTH = MAX_DIGITS + 1;
const SEQUENCED = new RegExp(`^(\\d{1,${MAX_DIGITS}}):`);

export function withSequence(sequence: number, base64: string): string {
  return `${sequence}:${base64}`;
}

/** The sequence number and the base64 text; no sequence for a message without the prefix. */
export function parseSequenced(text: string): { sequence?: number; base64: string } {
  const match = SEQUENCED.exec(text);
  if (!match) return { base64: text };
  return { sequence: Number(match[1]), base64: text.slice(match[0].length) };
}
