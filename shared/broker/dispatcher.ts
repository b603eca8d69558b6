/**
 * The dispatcher carries out what handlers return (actions.ts), in order, and stops at the first
 * action that fails: what comes after a failed delivery (its acknowledgement) never happens.
 * Packets wait in the outbox and go out once, when the batch is flushed, except a drain's, which
 * must be out before its hold is released: claim, send (what the client is owed so far, then the
 * claimed messages), release, all one action. Connections found gone are the flush's result, for
 * the entry point to end.
 */
import { ReasonCode } from '../protocol/reason-codes';
import { send, type Action, type Close, type Delivery, type Send } from './actions';
import type { BrokerDeps } from './context';
import { recordDeliveries } from './deliver';
import { drainQueue, newDrainHold } from './drain';
import { splitFanout } from './fanout';
import { publishPacket } from './outgoing';
import { Outbox } from './outbox';
import { StoreUnavailableError, type QueuedMessage, type Recipient } from './ports';

export class Dispatcher {
  private readonly outbox: Outbox;

  constructor(private readonly deps: BrokerDeps) {
    this.outbox = new Outbox((connectionId) => deps.doors.assignsTopicAliases(connectionId));
  }

  /** Carries out the actions in order; the first that fails ends it, with its error. */
  async perform(actions: readonly Action[]): Promise<void> {
    for (const action of actions) await this.performOne(action);
  }

  /** A connection closed by an action already: it is sent nothing more. */
  isClosing(connectionId: string): boolean {
    return this.outbox.isClosing(connectionId);
  }

  /**
   * Sends what is pending (other connections before `selves`, the connections whose packets were
   * handled) and closes what is to close; returns the connections found gone.
   */
  flush(selves: string | readonly string[] = []): Promise<string[]> {
    return this.outbox.flush(this.deps.gateway, this.deps.log, typeof selves === 'string' ? [selves] : selves);
  }

  private async performOne(action: Action): Promise<void> {
    switch (action.type) {
      case 'send':
        // A connection that said goodbye hears nothing after it.
        if (!this.isClosing(action.connectionId)) this.queue(action);
        return;
      case 'deliver':
        if (action.rulesAccepted) return void (await Promise.all([this.deliver(action.deliveries), action.rulesAccepted]));
        return this.deliver(action.deliveries);
      case 'drain':
        return this.drain(action.recipient, action.hold);
      case 'routed':
        return this.deps.store.receipts.markQos2Routed(action.clientId, action.packetId);
      case 'close':
        return this.close(action);
      case 'connected':
        // The packet loop's to read (packets.ts): nothing to send.
        this.deps.stats?.count('connects');
        return;
      default:
        return assertNever(action);
    }
  }

  /** Deliveries: split across fan-out workers when many, recorded, sent; then the queues they filled are drained. */
  private async deliver(deliveries: readonly Delivery[]): Promise<void> {
    const { own, jobs } = splitFanout(this.deps, deliveries);
    await Promise.all([this.deliverHere(own), ...jobs.map((job) => this.deps.fanout!.run(job))]);
  }

  private async deliverHere(deliveries: readonly Delivery[]): Promise<void> {
    const [error] = await this.recordGroups([deliveries]);
    // Not all delivered (or queued): whatever was to follow (the publisher's acknowledgement) does not happen.
    if (error !== undefined) throw error;
  }

  /**
   * The deliveries of several senders (each group one connection's, in order) recorded together:
   * one claim per subscriber for all of them (deliver.ts). Each group's answer: undefined when all
   * its deliveries were recorded (or queued) and are sent, else what failed one of its recipients,
   * whose failure is that group's alone. Groups that together need fan-out workers go one by one.
   */
  async deliverGroups(groups: ReadonlyArray<readonly Delivery[]>): Promise<unknown[]> {
    if (splitFanout(this.deps, groups.flat()).jobs.length === 0) return this.recordGroups(groups);
    return Promise.all(groups.map((group) => this.deliver(group).then(() => undefined, (error: unknown) => error ?? new Error('delivery failed'))));
  }

  private async recordGroups(groups: ReadonlyArray<readonly Delivery[]>): Promise<unknown[]> {
    const all = groups.flat();
    if (all.length === 0) return groups.map(() => undefined);
    const { sends, drains, failed } = await recordDeliveries(this.deps, all, (id) => this.isClosing(id));
    const failures = new Map<string, unknown>();
    for (const { recipient, connectionId, error } of failed) {
      if (connectionId) this.abandon({ ...recipient, connectionId }, error);
      failures.set(recipient.clientId, error);
    }
    for (const { recipient, message, packetId } of sends) this.sendPublish(recipient, message, packetId);
    for (const recipient of drains) {
      try {
        await this.drain(recipient);
      } catch (error) {
        failures.set(recipient.clientId, error);
      }
    }
    return groups.map((group) => {
      const hit = group.find((delivery) => failures.has(delivery.recipient.clientId));
      return hit ? failures.get(hit.recipient.clientId) ?? new Error('delivery failed') : undefined;
    });
  }

  private async drain(recipient: Recipient, hold = newDrainHold()): Promise<void> {
    const { connectionId } = recipient;
    if (!connectionId || this.isClosing(connectionId)) return;
    try {
      await drainQueue(this.deps, { ...recipient, connectionId }, hold, async (messages) => {
        for (const message of messages) this.sendPublish(recipient, message, message.packetId);
        await this.outbox.sendNow(this.deps.gateway, connectionId);
      });
    } catch (error) {
      this.abandon({ ...recipient, connectionId }, error);
      throw error;
    }
  }

  private sendPublish(recipient: Recipient, message: QueuedMessage, packetId: number | undefined): void {
    const { connectionId, protocolVersion, topicAliasMaximum } = recipient;
    if (!connectionId || this.isClosing(connectionId)) return;
    this.queue(send(connectionId, protocolVersion, publishPacket(protocolVersion, message, packetId, false, this.deps.now()), topicAliasMaximum));
  }

  /** A packet into the outbox, counted as sent. */
  private queue(action: Send): void {
    this.outbox.add(action);
    this.deps.stats?.count('packetsSent');
    if (action.packet.cmd === 'publish') this.deps.stats?.count('publishSent');
  }

  /** A connection says goodbye once: the first close wins. */
  private close({ connectionId, version, reasonCode, reasonString }: Close): void {
    if (this.isClosing(connectionId)) return;
    if (version === 5 && reasonCode !== undefined) {
      this.queue(send(connectionId, 5, { cmd: 'disconnect', reasonCode, ...(reasonString ? { properties: { reasonString } } : {}) }));
    }
    this.outbox.close(connectionId);
  }

  /** A subscriber whose deliveries could not be recorded or sent in order is closed: its session resends them when it reconnects. */
  private abandon(recipient: Recipient & { readonly connectionId: string }, error: unknown): void {
    this.deps.log.warn('closing a subscriber whose deliveries failed; its session resends them when it reconnects', {
      clientId: recipient.clientId,
      connectionId: recipient.connectionId,
      error: String(error),
    });
    const reasonCode = error instanceof StoreUnavailableError ? ReasonCode.ServerBusy : ReasonCode.UnspecifiedError;
    this.close({ type: 'close', connectionId: recipient.connectionId, version: recipient.protocolVersion, reasonCode });
  }
}

function assertNever(action: never): never {
  throw new Error(`unknown action ${JSON.stringify(action)}`);
}
