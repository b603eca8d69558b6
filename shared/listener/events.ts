/**
 * What the listener sends to the packet handler (functions/packets.ts): JSON, so it crosses a
 * Lambda invoke unchanged. Packets are whole, framed, base64-encoded, in arrival order.
 */
export type ListenerEvent =
  | {
      readonly type: 'packets';
      readonly connectionId: string;
      readonly packets: readonly string[];
      /** The version of the connection's CONNECT, once the listener has seen it (see handlePackets). */
      readonly protocolVersion?: 3 | 4 | 5;
    }
  | { readonly type: 'closed'; readonly connectionId: string; readonly reason: string }
  /** The byte stream cannot be framed (bad Remaining Length, packet over the limit): the handler closes it with the reason. */
  | { readonly type: 'failed'; readonly connectionId: string; readonly reasonCode: number; readonly reason: string };

/** Invokes the packet handler: in-process locally, Lambda Invoke in the cloud. */
export interface PacketSink {
  invoke(event: ListenerEvent): Promise<void>;
}
