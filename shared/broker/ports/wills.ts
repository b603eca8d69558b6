/** Wills waiting for their time. */
import type { DueWill, WillMessage } from './messages';

/** Delayed wills and wills of ended sessions, waiting for their time [MQTT-3.1.3-9]. */
export interface WillStore {

  /**
   * Publish this will at `dueAt` (epoch ms) unless the client reconnects first (replacing one
   * scheduled before). False: no session, or a connection holds it again, which cancels the will
   * (nothing is written).
   */
  scheduleWill(clientId: string, will: WillMessage, dueAt: number): Promise<boolean>;
  /** A new connection to the session: a pending delayed will is not published [MQTT-3.1.3-9]. */
  cancelWill(clientId: string): Promise<void>;
  /**
   * Wills due by `now`, each claimed for `leaseMs` as it is returned, so one publisher at a time
   * has it; one not completed within the lease (its publisher died) is claimed again.
   */
  claimDueWills(now: number, limit: number, leaseMs: number): Promise<DueWill[]>;
  /** A claimed will is published: delete it (unless a newer one replaced it). */
  completeWill(clientId: string, id: string): Promise<void>;
}
