/** How the listener writes to and closes a device's connection, whichever door it came through. */
/** The two transports a device may use: a TCP socket, or a WebSocket with binary frames. */
export interface Transport {
  write(bytes: Buffer): void;
  /** Bytes written that the network has not taken yet (a socket's writableLength, a WebSocket's bufferedAmount). */
  bufferedBytes(): number;
  /** What the transport adds to each write (a WebSocket frame header), counted against the outbound limit. */
  readonly framingBytes: number;
  /**
   * Close the network connection; the transport reports it through `onClose`. With `lastBytes`,
   * write them first and close gracefully, so the client reads them before the connection ends.
   */
  close(lastBytes?: Buffer): void;
  /** Close at once, dropping what is unsent, the kernel's share too (a TCP reset); reported through `onClose` as well. */
  abort(): void;
  readonly remoteAddress: string;
  /** The identity of the client's verified certificate (mutual TLS, tls-door.ts): the connection's user name. */
  readonly certificateUser?: string;
  /** Stop and restart reading (backpressure). */
  pause?(): void;
  resume?(): void;
}
