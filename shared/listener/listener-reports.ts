/** What the listener reports: where it listens (start) and what it has held and refused (stats). */

/** What the listener has held and refused, for operators and tests. */
export interface ListenerStats {
  /** Device sockets open now (all doors, admitted or awaiting their PROXY header). */
  readonly openSockets: number;
  /** The most bytes any connection's client had not yet taken, right after a write, since the start. */
  readonly peakOutboundBytes: number;
  /** Connections closed because their client stopped reading. */
  readonly slowReadersClosed: number;
  /** Sockets refused: the task full, their address full, or no valid PROXY header. */
  readonly refused: { readonly task: number; readonly address: number; readonly proxyHeader: number };
  /** Packet handler invocations with packets, and the connections and packets they carried. */
  readonly batches: { readonly invocations: number; readonly connections: number; readonly packets: number };
}

export interface ListenerAddresses {
  readonly mqttPort: number;
  /** Present when the listener serves TLS. */
  readonly mqttsPort?: number;
  /** Present when the listener serves MQTT over secure WebSocket. */
  readonly wssPort?: number;
  readonly wsPort: number;
  readonly deliveryEndpoint: string;
}
