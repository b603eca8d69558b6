/**
 * The broker's DynamoDB tables: the one definition that infra/ (CDK) and local/ (DynamoDB Local)
 * both read, so the cloud and the laptop cannot drift apart.
 *
 * Pure data: no SDK import, so the CDK app can read it without pulling in the runtime.
 */

export type KeyType = 'S' | 'N' | 'B';

export interface KeyAttribute {
  readonly name: string;
  readonly type: KeyType;
}

export interface TableDefinition {
  /** Logical id, used for CDK construct ids, stack outputs and local table names. */
  readonly id: string;
  /** Where the table's real name sits in `TableNames`. */
  readonly key: keyof TableNames;
  /** Environment variable through which entry points learn the table's real name. */
  readonly envVar: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** Attribute holding an epoch-seconds expiry; DynamoDB TTL deletes the item (late). */
  readonly timeToLiveAttribute?: string;
  /** Sparse global secondary indexes (eventually consistent: never on a path that must see its own writes). */
  readonly globalIndexes?: readonly GlobalIndexDefinition[];
  readonly purpose: string;
}

export interface GlobalIndexDefinition {
  readonly name: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** Attributes copied into the index besides the keys; absent: all of them. */
  readonly include?: readonly string[];
}

/**
 * The Sessions table's timer index: items that must be acted on at a time carry `timer` (what
 * kind and shard, session-items.ts timerKey) and `timerAt` (epoch ms). Session items of
 * disconnected sessions (`timer = "expiry#<0-15>"`) and delayed wills (`timer = "will#<0-15>"`),
 * spread over 16 key values a kind so no one index partition takes every detach. The sweeper
 * queries every shard for what is due; only timed items are
 * in it, so it stays small.
 */
export const TIMER_INDEX = 'timers';

/**
 * The Connections table's owner index: every connection item carries `owner` (API Gateway's
 * `a#<0-31>`, a listener task's `l#<delivery endpoint>#<0-31>`; connection-owners.ts), so the
 * sweeper finds a dead task's connections by task and walks the rest page by page, never
 * scanning the table. The listener task registry's items (`owner = "tasks"`) are in it too. It
 * carries only what the sweeper checks, so a connection's later updates (topic aliases, the end's
 * claim) do not write it.
 */
export const OWNER_INDEX = 'owners';

/**
 * One item per live network connection, keyed by the door's connection id. Also, keyed so that
 * no connection id can take them (`#...`): each listener task's registration (`#task#<endpoint>`,
 * refreshed by its heartbeat) and the sweeper's lease and cursors (`#sweeper`).
 */
export const connectionsTable: TableDefinition = {
  id: 'Connections',
  key: 'connections',
  envVar: 'CONNECTIONS_TABLE',
  partitionKey: { name: 'connectionId', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
  globalIndexes: [
    {
      name: OWNER_INDEX,
      partitionKey: { name: 'owner', type: 'S' },
      sortKey: { name: 'connectionId', type: 'S' },
      include: ['clientId', 'protocolVersion', 'keepalive', 'tokenExpiresAt', 'heartbeatAt', 'endpoint'],
    },
  ],
  purpose: 'connection id -> client id, protocol version, keep-alive (read once per packet batch)',
};

/**
 * One partition per client id: the session item (`sk = "session"`), the client's own list of
 * subscriptions (`sub#<filter>`), incoming QoS 2 receipts (`in#<packet id>`), the queue of
 * messages waiting for the client (`q#<time>#<n>`), exactly-once marks (`d#<key>`), and a delayed
 * will (`will`). Outgoing in-flight QoS 1/2 messages (`out#<packet id>`) live in 4 shards of their
 * own, partition key `<client id>\u0000o<packet id mod 4>` (session-items.ts, outRecordKey), so
 * that a busy subscriber's record puts and deletes do not share its session item's 1,000 write
 * units a second. They cost a reconnect that resumes a session one query per shard, and a
 * session's end the shard queries only when its session ever claimed packet ids. Records carry no
 * `timer` nor TTL attribute: they are in neither the timer index nor TTL's reach.
 */
export const sessionsTable: TableDefinition = {
  id: 'Sessions',
  key: 'sessions',
  envVar: 'SESSIONS_TABLE',
  partitionKey: { name: 'clientId', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
  globalIndexes: [{ name: TIMER_INDEX, partitionKey: { name: 'timer', type: 'S' }, sortKey: { name: 'timerAt', type: 'N' } }],
  purpose: 'sessions, per-client subscription lists, in-flight QoS 1/2 state, offline queues, delayed wills',
};

/**
 * The routing index that PUBLISH reads. Three kinds of item share it:
 * - `pk = "f|<filter>"`, `sk = "c|<client id>"` (or `"s|<share name>/<client id>"` for a shared
 *   subscription): one subscription; a topic's subscribers under one filter are one strongly
 *   consistent Query.
 * - `pk = "m|<filter>"`, `sk = "marker"`: the filter's marker, counting its subscriptions (`refs`).
 * - `pk = "shape|<copy>|<group>"`, `sk = "shapes"`: the shapes of a group's wildcard filters,
 *   with a count each, in several identical copies.
 * See shared/store/subscription-index.ts for the lookup.
 */
export const subscriptionsTable: TableDefinition = {
  id: 'Subscriptions',
  key: 'subscriptions',
  envVar: 'SUBSCRIPTIONS_TABLE',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  purpose: 'routing index: subscriptions by filter, a marker per filter, and the shapes of the wildcard filters',
};

/**
 * Retained messages as a tree of topic levels, so a wildcard filter finds them without a Scan:
 * `pk = "<depth>|<parent topic>"`, `sk = "~<level>"`, one item per topic prefix that has ever
 * held a retained message below or at it; items that hold one carry the message. `+` is one
 * Query on the parent, `#` a Query per level below. See shared/store/retained-index.ts.
 */
export const retainedTable: TableDefinition = {
  id: 'Retained',
  key: 'retained',
  envVar: 'RETAINED_TABLE',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  purpose: 'retained messages, as a tree of topic levels',
};

/**
 * Security state, one item per key: `user#<name>` (password hash, ACL rules), `door#<connection
 * id>` (an identity API Gateway's `$connect` established from a token, until CONNECT takes it),
 * `rate#<counter>#<window start>` (rate-limit counters). Door identities and counters expire.
 */
export const securityTable: TableDefinition = {
  id: 'Security',
  key: 'security',
  envVar: 'SECURITY_TABLE',
  partitionKey: { name: 'pk', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
  purpose: 'users (password hashes, ACL rules), identities from $connect, rate-limit counters',
};

/**
 * The API Gateway door's inbound order (shared/store/dynamo-inbox.ts): per connection, a lease
 * item (`sk = "lease"`: the next sequence number expected, and who is handling messages now)
 * and messages that arrived early, parked until the gap before them fills (`m#<sequence>`).
 */
export const inboxTable: TableDefinition = {
  id: 'Inbox',
  key: 'inbox',
  envVar: 'INBOX_TABLE',
  partitionKey: { name: 'connectionId', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
  purpose: 'API Gateway door: per-connection sequence lease and messages parked until their turn',
};

export const brokerTables: readonly TableDefinition[] = [
  connectionsTable,
  sessionsTable,
  subscriptionsTable,
  retainedTable,
  securityTable,
  inboxTable,
];

/** Table names for one deployment or one local harness. */
export interface TableNames {
  readonly connections: string;
  readonly sessions: string;
  readonly subscriptions: string;
  readonly retained: string;
  readonly security: string;
  readonly inbox: string;
}

/** Local harnesses name tables `<prefix>-<id>` so several can share one DynamoDB Local. */
export function localTableNames(prefix: string): TableNames {
  return namesBy((table) => `${prefix}-${table.id}`);
}

/** Entry points read the names CDK gave the tables from their environment, once. */
export function tableNamesFromEnv(env: NodeJS.ProcessEnv): TableNames {
  return namesBy((table) => {
    const value = env[table.envVar];
    if (!value) throw new Error(`${table.envVar} is not set: the deployment must pass the ${table.id} table name`);
    return value;
  });
}

function namesBy(nameOf: (table: TableDefinition) => string): TableNames {
  return {
    connections: nameOf(connectionsTable),
    sessions: nameOf(sessionsTable),
    subscriptions: nameOf(subscriptionsTable),
    retained: nameOf(retainedTable),
    security: nameOf(securityTable),
    inbox: nameOf(inboxTable),
  };
}
