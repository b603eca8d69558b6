/** Retained messages. */
import type { RetainedMessage } from './messages';

/** Retained messages by topic [MQTT-3.3.1-5]. */
export interface RetainedStore {

  /** Store, replace or (empty payload) delete the retained message of a topic. */
  putRetained(message: RetainedMessage): Promise<void>;
  /**
   * Retained messages whose topic matches the filter (wildcards included), unexpired. With a
   * `limit`, the walk reads at most that many tree nodes for the wildcard levels (each a topic that
   * holds or held a message); `truncated` says it used them all with nodes left to look at (there may be more).
   */
  findRetained(filter: string, limit?: number): Promise<FoundRetained>;
}

export interface FoundRetained {
  readonly messages: RetainedMessage[];
  readonly truncated: boolean;
}
