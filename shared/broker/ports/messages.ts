/** What travels through the broker: application messages, as published, queued, in flight, retained, and wills. */
import type { QoS, UserProperties } from '../../protocol/codec';

export interface WillMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties?: MessageProperties;
  /** 5.0 Will Delay Interval, seconds. */
  readonly delayInterval?: number;
}

/** The MQTT 5 properties that travel with an application message, untouched. */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: UserProperties;
}

export interface ApplicationMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties?: MessageProperties;
  /** Epoch ms after which the message is not delivered (from its Message Expiry Interval). */
  readonly expiresAtMs?: number;
  /** A QoS 2 PUBLISH's receipt (see ReceiptStore.receiveQos2): what makes its deliveries exactly once. */
  readonly origin?: QoS2Receipt;
}

/** One message on its way to one client: what the client will receive, before a packet id. */
export interface QueuedMessage extends Omit<ApplicationMessage, 'origin'> {
  readonly clientId: string;
  readonly subscriptionIdentifiers?: readonly number[];
  /**
   * A QoS 2 delivery of a QoS 2 PUBLISH: the mark `key` in the publisher's session (`clientId`)
   * is written in the same transaction as the delivery, which fails if the mark exists. Routing
   * the PUBLISH again (its handler died and the publisher resent it) delivers it to no one twice.
   */
  readonly once?: { readonly clientId: string; readonly key: string };
}

/** A QoS 2 PUBLISH received from a client and remembered until its PUBREL. */
export interface QoS2Receipt {
  readonly clientId: string;
  /** Unique to this receipt of the packet id (a later message may reuse the id after PUBREL). */
  readonly id: string;
  /** Its deliveries are all made (or queued): a resend is acknowledged without routing it again. */
  readonly routed: boolean;
}

/** A QoS 1 or 2 message sent to a client and not yet fully acknowledged. */
export interface OutgoingMessage extends QueuedMessage {
  readonly packetId: number;
  /** `pubrel`: the client sent PUBREC and the broker's PUBREL awaits PUBCOMP. */
  readonly state?: 'publish' | 'pubrel';
}

/** A retained message as stored for its topic. */
export type RetainedMessage = ApplicationMessage;

/** A will whose delay has passed (or whose session ended), claimed for publishing exactly once. */
export interface DueWill {
  readonly clientId: string;
  readonly will: WillMessage;
  /** This scheduling of the will (its due time): what completeWill deletes, and its exactly-once marks' key. */
  readonly id: string;
}
