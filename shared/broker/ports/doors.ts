/**
 * What a connection's door carries (the listener's TCP and WebSocket, API Gateway's WebSocket),
 * told by the connection id. shared/gateway/ knows the doors and implements it; the entry point
 * passes it in, so the broker core never parses a connection id.
 */
export interface Doors {
  /** The longest keep-alive (seconds) the connection's door carries: it drops connections idle for longer. */
  keepAliveLimit(connectionId: string): number;
  /** The largest packet a client on this door can send: the broker's own limit, or less if the door carries less. */
  inboundPacketLimit(connectionId: string, brokerLimit: number): number;
  /**
   * The largest packet a client may be sent: its own Maximum Packet Size (undefined: none), or
   * less if its door carries less. No connection (a message queued for an offline client): the
   * client's own; the door's applies when the message is sent.
   */
  outboundPacketLimit(connectionId: string | undefined, clientLimit: number | undefined): number | undefined;
  /**
   * The door chooses the connection's outgoing topic aliases itself (the listener, which holds
   * the socket): the handlers then send its PUBLISHes unaliased.
   */
  assignsTopicAliases(connectionId: string): boolean;
  /**
   * The door itself keeps a DISCONNECT that arrives before the connection's CONNACK until the
   * CONNACK is out (the listener, which holds the socket). On API Gateway's door no one does:
   * a CONNECT taking over one of its connections leaves that to the inbox (takeover.ts).
   */
  holdsDisconnectUntilConnack(connectionId: string): boolean;
}
