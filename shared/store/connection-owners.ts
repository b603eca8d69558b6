/**
 * Who owns a connection, as the Connections table's `owners` index keys it (tables.ts): the sweeper
 * finds a dead listener task's connections by task, and walks API Gateway's page by page, without
 * scanning the table. A listener connection's id names its task (gateway/connection-id.ts).
 *
 * Each owner is spread over OWNER_SHARDS key values (a hash of the connection id): one key value
 * of an index takes at most 1,000 writes a second, and a connect and a close each write it, so
 * one task (or API Gateway) takes up to 16,000 connects a second with their closes: a task
 * taking back 25,000 clients after a deploy in under two seconds, or API Gateway's 500 new
 * connections a second (its default quota), stay under it. The sweeper pays one Query more per
 * shard it walks.
 */
import { listenerEndpointOf } from '../gateway/connection-id';
import { shardOf } from './shard-hash';

export const OWNER_SHARDS = 32;

/** The owner of the listener task registry's items. */
export const TASKS_OWNER = 'tasks';

const BROWSER = 'a';
const TASK = 'l';

/** The owner key of a connection's item. */
export function ownerOf(connectionId: string): string {
  const endpoint = listenerEndpointOf(connectionId);
  const shard = shardOf(connectionId, OWNER_SHARDS);
  return endpoint === undefined ? `${BROWSER}#${shard}` : `${TASK}#${endpoint}#${shard}`;
}

export function browserOwners(): string[] {
  return shards(BROWSER);
}

export function taskOwners(endpoint: string): string[] {
  return shards(`${TASK}#${endpoint}`);
}

/** The item that registers a listener task; '#' is in no connection id of either door. */
export function taskItemId(endpoint: string): string {
  return `#task#${endpoint}`;
}

/** The sweeper's lease and cursors. */
export const SWEEPER_ITEM_ID = '#sweeper';

function shards(prefix: string): string[] {
  return Array.from({ length: OWNER_SHARDS }, (_, shard) => `${prefix}#${shard}`);
}
