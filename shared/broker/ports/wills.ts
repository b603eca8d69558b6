/** Wills waiting for their time. */
import type { DueWill, WillMessage } from './messages';

/** Delayed wills and wills of ended sessions, waiting for their time [MQTT-3.1.3-9]. */
export interface WillStore {

  /** Publish this will at `dueAt` (epoch ms) unless the client reconnects first. */
  /** False: a connection holds the session again, which cancels the will (nothing is written). */
  scheduleWill(clientId: string, will: WillMessage, dueAt: number): Promise<boolean>;
  /** A new connection to the session: a pending delayed will is not published [MQTT-3.1.3-9]. */
  cancelWill(clientId: string): Promise<void>;
  /** Wills due by `now`, each removed as it is returned so it is published once. */
  claimDueWills(now: number, limit: number): Promise<DueWill[]>;
  /** A claimed will is published: delete it (unless a newer one replaced it). */
  completeWill(clientId: string, id: string): Promise<void>;
}
