/** QoS 2 receipts: the exactly-once half of a QoS 2 PUBLISH received from a client. */
import type { QoS2Receipt } from './messages';

/** QoS 2 PUBLISHes received from a client and not yet released by its PUBREL [MQTT-4.3.3]. */
export interface ReceiptStore {

  /**
   * A QoS 2 PUBLISH arrived: remember its packet id until PUBREL (before routing it); the receipt,
   * new or the one remembered (a resend, or a concurrent handler, gets the same receipt).
   */
  receiveQos2(clientId: string, packetId: number): Promise<QoS2Receipt>;
  /** The QoS 2 PUBLISH with this packet id is routed. */
  markQos2Routed(clientId: string, packetId: number): Promise<void>;
  /** PUBREL arrived: forget the packet id. False if it was not known. */
  releaseIncomingQos2(clientId: string, packetId: number): Promise<boolean>;
  /** QoS 2 messages received from the client and not yet released. */
  countIncomingQos2(clientId: string): Promise<number>;
}
