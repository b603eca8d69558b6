/** Retained messages. */
import type { RetainedMessage } from './messages';

/** Retained messages by topic [MQTT-3.3.1-5]. */
/** Whose retained topics a new one counts in (a user name; '' for anonymous clients), and their bound. */
export interface RetainedQuota {
  readonly owner: string;
  readonly bound: number;
}

export interface RetainedStore {

  /**
   * Store, replace or (empty payload) delete the retained message of a topic. With a `quota`, a
   * topic that holds no message yet is counted in its owner's retained topics, and not stored
   * ('quota-exceeded') when they are at the bound; a cleared topic is counted out of them.
   */
  putRetained(message: RetainedMessage, quota?: RetainedQuota): Promise<'stored' | 'quota-exceeded'>;
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
