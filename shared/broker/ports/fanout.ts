/** Fan-out workers: parts of one large fan-out delivered elsewhere (a Lambda invoke in the cloud). */
import type { ProtocolVersion } from '../../protocol/codec';
import type { MessageProperties, QueuedMessage } from './messages';

/** Who receives a message and how it speaks: a session, or the connection being handled. */
export interface Recipient {
  readonly clientId: string;
  readonly connectionId?: string;
  readonly protocolVersion: ProtocolVersion;
  readonly maximumPacketSize?: number;
  readonly receiveMaximum?: number;
  readonly topicAliasMaximum?: number;
}

/**
 * A part of one fan-out, as JSON (the Lambda event of the fan-out function). Each distinct payload
 * travels once, in base64; a delivery names its payload by its index in `payloads`.
 */
export interface FanoutJob {
  readonly payloads: readonly string[];
  readonly deliveries: ReadonlyArray<{ readonly recipient: Recipient; readonly message: SerializedMessage }>;
}

/** A message as a fan-out job carries it: the payload by index (FanoutJob.payloads), correlation data in base64. */
export type SerializedMessage = Omit<QueuedMessage, 'payload' | 'properties'> & {
  readonly payload: number;
  readonly properties?: Omit<MessageProperties, 'correlationData'> & { correlationData?: string };
};

/** Runs a fan-out part somewhere else and resolves when it is done. */
export interface FanoutWorkers {
  /** A worker that failed fails the publish: the publisher is not acknowledged. */
  run(job: FanoutJob): Promise<void>;
}
