/**
 * 5.0 Reason Strings on refusing PUBACK, PUBREC and SUBACK: why, in words, for a client that asked
 * for problem information (Request Problem Information 1, the default). With 0 the broker sends
 * no Reason String and no User Property on any packet but PUBLISH, CONNACK and DISCONNECT
 * [MQTT-3.1.2-29]. No User Properties are sent on acknowledgements at all. A Reason String that
 * would take the packet past the client's Maximum Packet Size is left out ([MQTT-3.4.2-2],
 * [MQTT-3.5.2-2], [MQTT-3.9.2-1]).
 */
import { encodePacket, type PubackPacket, type PubrecPacket, type SubackPacket } from '../protocol/codec';
import { ReasonCode } from '../protocol/reason-codes';
import type { BrokerConfig } from './context';
import { topicOverLimit } from './limits';
import type { ConnectionRecord } from './ports';

type Acknowledgement = PubackPacket | PubrecPacket | SubackPacket;

/** The packet with the Reason String, when the client may be sent one. */
export function withReasonString<P extends Acknowledgement>(
  connection: Pick<ConnectionRecord, 'protocolVersion' | 'requestProblemInformation' | 'maximumPacketSize'>,
  packet: P,
  reasonString: string | undefined,
): P {
  if (reasonString === undefined || connection.protocolVersion !== 5) return packet;
  // [MQTT-3.1.2-29] Request Problem Information 0: no Reason String
  if (connection.requestProblemInformation === false) return packet;
  const withString = { ...packet, properties: { ...packet.properties, reasonString } };
  const limit = connection.maximumPacketSize;
  if (limit !== undefined && encodePacket(withString, 5).length > limit) return packet;
  return withString;
}

/** Why a PUBLISH was refused with this reason code (authorization.ts, publishRefusal). */
export function publishProblem(config: BrokerConfig, topic: string, reasonCode: number): string | undefined {
  if (reasonCode === ReasonCode.NotAuthorized) return `not authorized to publish to ${topic}`;
  if (reasonCode === ReasonCode.TopicNameInvalid) return `topic name ${limitsText(config)}`;
  if (reasonCode === ReasonCode.QuotaExceeded) return `quota exceeded (retained topics): ${topic} not retained`;
  return undefined;
}

/** Why the refused filters of a SUBSCRIBE were refused, one clause per filter; undefined if none was. */
export function subscribeProblem(config: BrokerConfig, filters: readonly string[], granted: readonly number[]): string | undefined {
  const clauses = filters.flatMap((filter, i) => {
    const code = granted[i]!;
    return code >= ReasonCode.UnspecifiedError ? [`${filter}: ${subscribeRefusalText(config, filter, code)}`] : [];
  });
  return clauses.length > 0 ? clauses.join('; ') : undefined;
}

function subscribeRefusalText(config: BrokerConfig, filter: string, code: number): string {
  switch (code) {
    case ReasonCode.NotAuthorized:
      return 'not authorized to subscribe';
    case ReasonCode.QuotaExceeded:
      return 'quota exceeded (subscriptions)';
    case ReasonCode.TopicFilterInvalid:
      return topicOverLimit(config, filter, code) !== undefined ? `topic filter ${limitsText(config)}` : 'not a valid topic filter';
    default:
      return 'refused';
  }
}

function limitsText(config: BrokerConfig): string {
  return `over the broker's limits (${config.maxTopicLength} bytes, ${config.maxTopicLevels} levels)`;
}
