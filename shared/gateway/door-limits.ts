/**
 * What each door can carry, from the connection id alone (see connection-id.ts): the broker's
 * Doors port.
 *
 * API Gateway closes a connection with 1009 on a frame over 32 KB or a message over 128 KB. A
 * browser sends each message as one frame, so a client on this door can send at most 32 KB of
 * text at once: its sequence prefix and the base64 of one packet. Messages to a client may be
 * 128 KB (API Gateway splits them into frames). Base64 carries 3 bytes in 4 characters.
 * The listener's door carries any size; the broker's own limits apply there.
 */
import type { Doors } from '../broker/ports';
import { listenerEndpointOf } from './connection-id';
import { MAX_SEQUENCE_PREFIX_LENGTH } from './sequence-prefix';

export const API_GATEWAY_FRAME_BYTES = 32 * 1024;
export const API_GATEWAY_MESSAGE_BYTES = 128 * 1024;

/** The largest packet that fits in `textBytes` of base64. */
export function base64Capacity(textBytes: number): number {
  return Math.floor(textBytes / 4) * 3;
}

/** Largest packet a client on the API Gateway door can send: 24,564 bytes. */
export const API_GATEWAY_INBOUND_PACKET_BYTES = base64Capacity(API_GATEWAY_FRAME_BYTES - MAX_SEQUENCE_PREFIX_LENGTH);
/** Largest packet the API Gateway door can carry to a client in one message: 98,304 bytes. */
export const API_GATEWAY_OUTBOUND_PACKET_BYTES = base64Capacity(API_GATEWAY_MESSAGE_BYTES);

export interface DoorOptions {
  /**
   * The longest keep-alive each door carries: the NLB closes idle TLS flows after 350 s and API
   * Gateway idle connections after 10 minutes. 5.0 clients asking for more (or none) are given
   * this as Server Keep Alive.
   */
  readonly keepAliveLimit: { readonly listener: number; readonly apiGateway: number };
}

export const defaultDoorOptions: DoorOptions = { keepAliveLimit: { listener: 300, apiGateway: 540 } };

export class DoorLimits implements Doors {
  readonly keepAlive: DoorOptions['keepAliveLimit'];

  constructor(options: Partial<DoorOptions> = {}) {
    this.keepAlive = options.keepAliveLimit ?? defaultDoorOptions.keepAliveLimit;
  }

  keepAliveLimit(connectionId: string): number {
    return isApiGatewayConnection(connectionId) ? this.keepAlive.apiGateway : this.keepAlive.listener;
  }

  /** The Maximum Packet Size the broker announces in CONNACK: its own, or less if the door carries less. */
  inboundPacketLimit(connectionId: string, brokerLimit: number): number {
    return isApiGatewayConnection(connectionId) ? Math.min(brokerLimit, API_GATEWAY_INBOUND_PACKET_BYTES) : brokerLimit;
  }

  outboundPacketLimit(connectionId: string | undefined, clientLimit: number | undefined): number | undefined {
    if (connectionId === undefined || !isApiGatewayConnection(connectionId)) return clientLimit;
    return Math.min(clientLimit ?? Infinity, API_GATEWAY_OUTBOUND_PACKET_BYTES);
  }

  /** The listener keeps each device connection's outgoing alias table (shared/listener/outgoing-aliases.ts). */
  assignsTopicAliases(connectionId: string): boolean {
    return !isApiGatewayConnection(connectionId);
  }

  /** The listener holds a takeover's DISCONNECT that overtakes the CONNACK (shared/listener/client-connection.ts). */
  holdsDisconnectUntilConnack(connectionId: string): boolean {
    return !isApiGatewayConnection(connectionId);
  }

  /** API Gateway's connections pass through `$connect`, which may have checked a token (the listener has none). */
  passesConnectRoute(connectionId: string): boolean {
    return isApiGatewayConnection(connectionId);
  }
}

function isApiGatewayConnection(connectionId: string): boolean {
  return listenerEndpointOf(connectionId) === undefined;
}
