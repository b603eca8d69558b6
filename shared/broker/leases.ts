/**
 * How long the broker's claims stand: work one handler claims (holding a session's deliveries,
 * ending a connection, publishing a due will) is redone by another once the claim's lease has
 * passed, since its holder may have died. Long enough for the work, short enough that a client is
 * not kept waiting long after a crash.
 */
export const LEASES = {
  /** A CONNECT's hold on its session's deliveries (until CONNACK, the resend and the queue are out), and a drain's. */
  deliveryHoldMs: 30_000,
  /** The end of a connection (claimConnectionEnd). */
  connectionEndMs: 30_000,
  /** The publication of a due will (claimDueWills). */
  willPublicationMs: 30_000,
  /** A sweep of the connections (claimSweep): past the sweeper's 60 s timeout, so a run cut off by it is not overlapped. */
  sweepMs: 70_000,
} as const;
