/** An EventBridge bus: PutEvents, 10 entries a call, the message as each event's detail; refused entries come back one by one. */
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { EventBridgeTarget } from '../rules/rule-config';
import type { EntryFailure, TargetEntry, TargetSender } from '../rules/target-port';

export const DEFAULT_EVENT_SOURCE = 'mqtt.rules';
export const DEFAULT_DETAIL_TYPE = 'MQTT message';
/** Refusals that may pass on a later try. */
const PASSING = new Set(['ThrottlingException', 'InternalException', 'InternalFailure']);

export class EventBridgeTargetSender implements TargetSender {
  readonly maxEntries = 10;
  /** A PutEvents request's size limit (256 KB), less room for each entry's own fields. */
  readonly maxBytes = 250 * 1024;

  constructor(
    private readonly events: Pick<EventBridgeClient, 'send'>,
    private readonly target: EventBridgeTarget,
  ) {}

  async send(entries: readonly TargetEntry[]): Promise<EntryFailure[]> {
    const answer = await this.events.send(
      new PutEventsCommand({
        Entries: entries.map((e) => ({
          EventBusName: this.target.bus ?? 'default',
          Source: this.target.source ?? DEFAULT_EVENT_SOURCE,
          DetailType: this.target.detailType ?? DEFAULT_DETAIL_TYPE,
          Detail: JSON.stringify(e.body),
        })),
      }),
    );
    if (!answer.FailedEntryCount) return [];
    return (answer.Entries ?? []).flatMap((entry, index) =>
      entry.ErrorCode ? [{ index, error: entry.ErrorMessage ? `${entry.ErrorCode}: ${entry.ErrorMessage}` : String(entry.ErrorCode), retryable: PASSING.has(entry.ErrorCode) }] : [],
    );
  }
}
