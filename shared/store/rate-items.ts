/**
 * The windowed counters of the rate limits, in the Security table: one item per subject and
 * window (`rate#<kind>#<hashed subject>#<window start>`), its count added to, expiring a minute
 * after its window. A CONNECT's count rides in the transaction that creates its session, refused
 * by condition when the window is full (see DynamoSessionStore.openSession).
 */
import type { RateCharge } from '../broker/ports';
import type { TransactItem, UpdateInput } from './dynamo-table';

const RATE = 'rate#';

export function rateItemKey(key: string, windowStart: number): { pk: string } {
  return { pk: `${RATE}${key}#${windowStart}` };
}

/** Adds `amount` to the window's count, whatever it holds. */
export function rateCountUpdate(key: string, windowStart: number, windowSeconds: number, amount: number): UpdateInput {
  return {
    Key: rateItemKey(key, windowStart),
    UpdateExpression: 'ADD #n :a SET expiresAt = if_not_exists(expiresAt, :e)',
    ExpressionAttributeNames: { '#n': 'count' },
    ExpressionAttributeValues: { ':a': amount, ':e': windowStart + windowSeconds + 60 },
  };
}

/** Adds the charge to its window only while the window then holds at most its limit (the condition fails otherwise, and nothing is added). */
export function rateChargeUpdate({ key, windowStart, windowSeconds, amount, limit }: RateCharge): UpdateInput & { ConditionExpression: string } {
  const update = rateCountUpdate(key, windowStart, windowSeconds, amount);
  return {
    ...update,
    ConditionExpression: 'attribute_not_exists(#n) OR #n <= :max',
    ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':max': limit - amount },
  };
}

/** The charge as an item of a transaction on another table. */
export function rateChargeItem(securityTable: string, charge: RateCharge): TransactItem {
  return { Update: { TableName: securityTable, ...rateChargeUpdate(charge) } } as TransactItem;
}
