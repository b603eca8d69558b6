/**
 * Messages as DynamoDB items and back: queued and in-flight messages, retained messages, wills.
 * Pure functions, shared by the adapters that store messages.
 */
import type { MessageProperties, QueuedMessage, RetainedMessage, WillMessage } from '../broker/ports';
import type { UserProperties } from '../protocol/codec';
import type { Item } from './dynamo-table';

export function toMessage(item: Item): RetainedMessage {
  return {
    topic: item.topic as string,
    payload: Buffer.from((item.payload as Uint8Array | undefined) ?? new Uint8Array()),
    qos: Number(item.qos ?? 0) as RetainedMessage['qos'],
    retain: Boolean(item.retain),
    ...(item.properties ? { properties: toProperties(item.properties as Item) } : {}),
    ...(typeof item.expiresAtMs === 'number' ? { expiresAtMs: item.expiresAtMs } : {}),
  };
}

/**
 * A message as an item. User properties are kept as a list of [name, value] pairs: a DynamoDB map
 * does not keep the order of its keys, and the broker must ([MQTT-3.3.2-18], [MQTT-3.1.3-10]).
 */
export function toItemMessage<M extends { readonly properties?: MessageProperties }>(message: M): M | (Omit<M, 'properties'> & { properties: Item }) {
  const userProperties = message.properties?.userProperties;
  if (!userProperties) return message;
  return { ...message, properties: { ...message.properties, userProperties: Object.entries(userProperties) } };
}

/** Binary attributes come back as Uint8Array; the codec wants Buffers. User properties come back as pairs. */
function toProperties(item: Item): MessageProperties {
  const { correlationData, userProperties, ...rest } = item;
  return {
    ...(rest as MessageProperties),
    ...(correlationData ? { correlationData: Buffer.from(correlationData as Uint8Array) } : {}),
    ...(userProperties
      ? { userProperties: Array.isArray(userProperties) ? Object.fromEntries(userProperties as Array<[string, string | string[]]>) : (userProperties as UserProperties) }
      : {}),
  };
}

export function toQueued(item: Item): QueuedMessage {
  return {
    ...toMessage(item),
    clientId: item.clientId as string,
    ...(Array.isArray(item.subscriptionIdentifiers) ? { subscriptionIdentifiers: item.subscriptionIdentifiers.map(Number) } : {}),
  };
}

export function toWill(item: Item): WillMessage {
  return {
    ...toMessage(item),
    ...(typeof item.delayInterval === 'number' ? { delayInterval: item.delayInterval } : {}),
  };
}

/** A message as its queue or in-flight item: its exactly-once mark is written apart, once. */
export function messageItem(message: QueuedMessage): Item {
  const { once: _once, ...rest } = message;
  return toItemMessage(rest) as Item;
}
