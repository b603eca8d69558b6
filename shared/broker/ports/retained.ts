/** Retained messages. */
import type { RetainedMessage } from './messages';

/** Retained messages by topic [MQTT-3.3.1-5]. */
export interface RetainedStore {

  /** Store, replace or (empty payload) delete the retained message of a topic. */
  putRetained(message: RetainedMessage): Promise<void>;
  /** Retained messages whose topic matches the filter (wildcards included), unexpired. */
  findRetained(filter: string): Promise<RetainedMessage[]>;
}
