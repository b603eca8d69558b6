/**
 * Small transactions made at about the same moment, sent together as one TransactWriteItems: the
 * clean-start CONNECTs of a listener batch each write their session item, their connection's
 * record and a counter or two, and a connect storm's rate is bounded by how many transactions the
 * store serves, not by their items (DynamoDB Local here: 170–230 one-connection transactions a
 * second, 555 connections a second in transactions of ten).
 *
 * Grouping never changes an outcome. A group holds at most DynamoDB's 100 items, and never two
 * operations on one item (DynamoDB refuses such a transaction): a transaction that would touch an
 * item the open group touches waits for the next group. When the group's transaction is cancelled,
 * each member whose own items failed their conditions gets those failures, as it would alone;
 * the others, cancelled only for their neighbours' sake, are grouped again (or, when no member's
 * condition failed, run on their own). Any other error is every member's error, as it would have
 * been.
 *
 * Nothing waits for a timer: a transaction goes out at once while fewer than `maxInFlight` are in
 * flight, and only those made while all are busy are grouped, so a lone CONNECT costs what it did.
 */
import type { CancellationReason } from '@aws-sdk/client-dynamodb';

/** DynamoDB's limit on the items of one TransactWriteItems. */
const MAX_ITEMS = 100;

export type Sent = { readonly ok: true } | { readonly ok: false; readonly reasons: readonly CancellationReason[] };
/** A transaction's outcome: written, or which of its items' conditions failed (in its order). */
export type Outcome = { readonly ok: true } | { readonly ok: false; readonly failed: boolean[] };

export interface CombinerPorts<T> {
  /** Sends these items as one transaction: written, or cancelled with a reason per item. */
  send(items: readonly T[]): Promise<Sent>;
  /** One member's transaction on its own, as the store runs it without grouping. */
  alone(items: readonly T[]): Promise<Outcome>;
}

interface Member<T> {
  readonly items: readonly T[];
  readonly keys: readonly string[];
  readonly resolve: (outcome: Outcome) => void;
  readonly reject: (error: unknown) => void;
}

export class TransactionCombiner<T> {
  private open: Member<T>[] = [];
  private openItems = 0;
  private openKeys = new Set<string>();
  private readonly closed: Member<T>[][] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly ports: CombinerPorts<T>,
    private readonly maxInFlight = 4,
  ) {}

  /** The transaction of these items, grouped with others where it can be; `keys` name the items it touches. */
  submit(items: readonly T[], keys: readonly string[]): Promise<Outcome> {
    if (items.length > MAX_ITEMS) return this.ports.alone(items);
    return new Promise<Outcome>((resolve, reject) => {
      if (this.openItems + items.length > MAX_ITEMS || keys.some((key) => this.openKeys.has(key))) this.close();
      this.open.push({ items, keys, resolve, reject });
      this.openItems += items.length;
      for (const key of keys) this.openKeys.add(key);
      if (!this.scheduled) {
        this.scheduled = true;
        // After the current turn, so that transactions made in it can join.
        setImmediate(() => this.pump());
      }
    });
  }

  private close(): void {
    if (this.open.length === 0) return;
    this.closed.push(this.open);
    this.open = [];
    this.openItems = 0;
    this.openKeys = new Set();
  }

  private pump(): void {
    this.scheduled = false;
    while (this.inFlight < this.maxInFlight) {
      if (this.closed.length === 0) this.close();
      const group = this.closed.shift();
      if (!group) return;
      this.inFlight += 1;
      void this.run(group).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async run(group: readonly Member<T>[]): Promise<void> {
    if (group.length === 1) {
      await settle(group[0]!, () => this.ports.alone(group[0]!.items));
      return;
    }
    let sent: Sent;
    try {
      sent = await this.ports.send(group.flatMap((member) => member.items));
    } catch (error) {
      for (const member of group) member.reject(error);
      return;
    }
    if (sent.ok) {
      for (const member of group) member.resolve({ ok: true });
      return;
    }
    let offset = 0;
    const innocent: Member<T>[] = [];
    for (const member of group) {
      const failed = member.items.map((_, i) => sent.reasons[offset + i]?.Code === 'ConditionalCheckFailed');
      offset += member.items.length;
      if (failed.some(Boolean)) member.resolve({ ok: false, failed });
      else innocent.push(member);
    }
    // Without the members that failed, the rest are grouped again; cancelled for another reason
    // (a conflict with a concurrent transaction, a throttle), each runs alone, retried as alone.
    if (innocent.length < group.length) {
      for (const member of innocent) this.submit(member.items, member.keys).then(member.resolve, member.reject);
      return;
    }
    await Promise.all(innocent.map((member) => settle(member, () => this.ports.alone(member.items))));
  }
}

async function settle<T>(member: Member<T>, run: () => Promise<Outcome>): Promise<void> {
  try {
    member.resolve(await run());
  } catch (error) {
    member.reject(error);
  }
}
