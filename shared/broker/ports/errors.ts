/** What a store throws when it cannot do the work for now. */

/**
 * The store could not do what was asked, for now: DynamoDB is unreachable, timed out or answered
 * 5xx after the SDK's retries ('unavailable'), or it kept throttling ('busy'). The adapter throws
 * it (translated by class, shared/store/store-errors.ts); the broker refuses the work with the
 * matching reason code (5.0: 0x88 Server unavailable / 0x89 Server busy; 3.1.1 CONNACK: 3) and
 * acknowledges nothing, so the client tries again later.
 */
export class StoreUnavailableError extends Error {
  constructor(
    readonly kind: 'unavailable' | 'busy',
    message: string,
  ) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}
