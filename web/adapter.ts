/**
 * MQTT.js over API Gateway WebSocket. API Gateway closes a connection on a binary frame (1003)
 * and gives the messages of one connection no order, so this adapter, given to stock MQTT.js as
 * its `createWebsocket`, speaks what the broker's API Gateway door expects:
 * - MQTT packets travel base64-encoded in text messages, whole packets only, each message
 *   numbered (`<sequence>:<base64>`, see shared/gateway/sequence-prefix.ts) so the broker can
 *   handle them in the order sent, however API Gateway schedules them;
 * - the packets MQTT.js writes in one go are sent as one message, up to the 32 KB a browser can
 *   send in one frame;
 * - from the server it takes text or binary messages (AWS does not say which a posted message
 *   becomes), both holding base64; anything else (API Gateway's own JSON error messages) is
 *   logged and skipped.
 *
 *   import mqtt from 'mqtt';
 *   import { createWebsocket } from './adapter.js';
 *   const client = mqtt.connect('wss://abc123.execute-api.eu-west-1.amazonaws.com/prod', { createWebsocket });
 *
 * Browser-only APIs (WebSocket, EventTarget, btoa/atob); in Node, pass a WebSocket class (e.g.
 * the `ws` package's) to `apiGatewayWebsocket`.
 */
import { FIRST_SEQUENCE, withSequence } from '../shared/gateway/sequence-prefix';

/** API Gateway's frame quota; a browser sends each message as one frame. */
const MAX_MESSAGE_CHARS = 32 * 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

type WebSocketClass = new (url: string, protocols?: string | string[]) => WebSocket;

/** For MQTT.js: `mqtt.connect(url, { createWebsocket })`. */
export function createWebsocket(url: string, protocols: string[]): ApiGatewaySocket {
  return new ApiGatewaySocket(url, protocols, globalThis.WebSocket);
}

/** The same, over a WebSocket class of your choice (Node: `apiGatewayWebsocket({ WebSocket: ws })`). */
export function apiGatewayWebsocket(options: { WebSocket: unknown }): (url: string, protocols: string[]) => ApiGatewaySocket {
  return (url, protocols) => new ApiGatewaySocket(url, protocols, options.WebSocket as WebSocketClass);
}

/** Looks like a browser WebSocket to MQTT.js; sends and receives what the API Gateway door speaks. */
export class ApiGatewaySocket extends EventTarget {
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
  /** MQTT.js sets it; messages are always handed over as ArrayBuffers. */
  binaryType: 'arraybuffer' | 'blob' = 'arraybuffer';
  private readonly socket: WebSocket;
  private sequence = FIRST_SEQUENCE - 1;
  /** Bytes written that do not yet make a whole packet. */
  private partial: Uint8Array = new Uint8Array(0);
  /** Whole packets waiting to be sent together. */
  private packets: Uint8Array[] = [];
  private flushing = false;

  constructor(url: string, protocols: string[], WebSocketImpl: WebSocketClass) {
    super();
    this.socket = new WebSocketImpl(url, protocols);
    this.socket.binaryType = 'arraybuffer';
    this.socket.addEventListener('open', () => this.dispatchEvent(new Event('open')));
    this.socket.addEventListener('error', () => this.dispatchEvent(new Event('error')));
    this.socket.addEventListener('close', (event) => this.dispatchEvent(closeEvent(event)));
    this.socket.addEventListener('message', (event) => this.receive(event.data as string | ArrayBuffer));
  }

  get readyState(): number {
    return this.socket.readyState;
  }

  get protocol(): string {
    return this.socket.protocol;
  }

  get url(): string {
    return this.socket.url;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
    this.partial = concat([this.partial, bytes]);
    for (let length = packetLength(this.partial); length !== undefined && length <= this.partial.length; length = packetLength(this.partial)) {
      this.packets.push(this.partial.slice(0, length));
      this.partial = this.partial.slice(length);
    }
    // What MQTT.js writes in one turn of the event loop goes out together.
    if (!this.flushing && this.packets.length > 0) {
      this.flushing = true;
      queueMicrotask(() => this.flush());
    }
  }

  close(code?: number, reason?: string): void {
    this.flush();
    this.socket.close(code, reason);
  }

  private flush(): void {
    this.flushing = false;
    let group: Uint8Array[] = [];
    let chars = 0;
    const sendGroup = (): void => {
      if (group.length === 0) return;
      this.socket.send(withSequence(++this.sequence, toBase64(concat(group))));
      group = [];
      chars = 0;
    };
    for (const packet of this.packets) {
      const packetChars = Math.ceil(packet.length / 3) * 4;
      // A packet too large for one frame still goes, alone: API Gateway closes with 1009, as it would.
      if (chars > 0 && chars + packetChars + 16 > MAX_MESSAGE_CHARS) sendGroup();
      group.push(packet);
      chars += packetChars;
    }
    sendGroup();
    this.packets = [];
  }

  private receive(data: string | ArrayBuffer): void {
    const text = typeof data === 'string' ? data : String.fromCharCode(...new Uint8Array(data));
    if (!BASE64.test(text)) {
      console.warn('API Gateway sent a message that is not MQTT:', text.slice(0, 200));
      return;
    }
    this.dispatchEvent(new MessageEvent('message', { data: fromBase64(text).buffer }));
  }
}

/**
 * A whole packet's length from its fixed header (MQTT: one byte, then the Remaining Length in
 * 1 to 4 bytes of 7 bits each); undefined until the header is complete.
 */
function packetLength(bytes: Uint8Array): number | undefined {
  let remaining = 0;
  for (let i = 1; i <= 4; i++) {
    if (i >= bytes.length) return undefined;
    remaining += (bytes[i]! & 0x7f) * 128 ** (i - 1);
    if ((bytes[i]! & 0x80) === 0) return 1 + i + remaining;
  }
  // A malformed length: hand the bytes over as they are, for the broker to refuse.
  return bytes.length;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** CloseEvent where there is one (browsers); an Event with the same fields elsewhere. */
function closeEvent(from: { code: number; reason: string; wasClean: boolean }): Event {
  const init = { code: from.code, reason: from.reason, wasClean: from.wasClean };
  const CloseEventClass = (globalThis as { CloseEvent?: new (type: string, init: object) => Event }).CloseEvent;
  if (CloseEventClass) return new CloseEventClass('close', init);
  return Object.assign(new Event('close'), init);
}
