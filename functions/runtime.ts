/**
 * Builds the broker's dependencies: from the environment in the cloud (once per Lambda
 * container, at module scope), or from explicit options in the local harness.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { defaultBrokerConfig, type BrokerConfig, type BrokerDeps } from '../shared/broker/context';
import { createJsonLogger, type LogLevel } from '../shared/util/logger';
import type { FanoutWorkers } from '../shared/broker/ports';
import type { Logger } from '../shared/broker/ports';
import { LambdaFanoutWorkers } from '../shared/lambda/lambda-fanout';
import { ConnectionsApi, type ConnectionsApiOptions } from '../shared/gateway/connections-api';
import { DoorLimits, type DoorOptions } from '../shared/gateway/door-limits';
import { BrokerSecurity, type SecurityPolicy } from '../shared/security/broker-security';
import { createDynamoStore, type DynamoStore } from '../shared/store/create-dynamo-store';
import type { DoorSecurityDeps } from './handlers';
import { DynamoConnectionDirectory } from '../shared/store/dynamo-connection-directory';
import { DynamoConnectionInbox } from '../shared/store/dynamo-inbox';
import { DynamoSecurityStore } from '../shared/store/dynamo-security';
import { defaultStoreRetry, dynamoDbClientConfig, translateStoreErrors, type StoreRetryOptions } from '../shared/store/store-errors';
import { securityTable, tableNamesFromEnv, type TableNames } from '../shared/store/tables';
import { deliverySecretFromSecretsManager } from './delivery-secret';
import { BrokerStats, sinks } from '../shared/broker/stats';
import { DynamoStatsStore } from '../shared/store/dynamo-stats';
import { emfSink, type EmfOptions } from '../shared/util/emf';
import { describeSecurity, limitsFromEnv, securityPolicyFromEnv } from './security-config';
import { createRuleEngine, rulesFromEnv, type RulesOptions } from './rules-config';
import type { RuleEngine } from '../shared/rules/rule-engine';
import { awsRuleTargets } from '../shared/rule-targets/aws-targets';

export interface BrokerDepsOptions {
  readonly tables: TableNames;
  readonly dynamoDb?: DynamoDBClientConfig;
  /** Attempts and timeouts of every DynamoDB call (shared/store/store-errors.ts); the cloud's defaults otherwise. */
  readonly storeRetry?: Partial<StoreRetryOptions>;
  readonly connections?: ConnectionsApiOptions;
  readonly log?: Logger;
  readonly config?: Partial<BrokerConfig>;
  /** What the doors carry (keep-alive limits); the cloud's by default. */
  readonly doors?: Partial<DoorOptions>;
  /** Large fan-outs are split across these; built from the deps (the local harness runs them in-process). */
  readonly fanout?: (deps: BrokerDeps) => FanoutWorkers;
  /** Authentication and ACL; default: authentication required, no ACL. */
  readonly security?: SecurityPolicy;
  /** Adds middleware to the DynamoDB client before it is used (the local harness enforces AWS's limits there). */
  readonly instrumentDynamoDb?: (client: DynamoDBClient) => void;
  /** The broker's counters: how often a process flushes them, and (in the cloud) where each flush is printed as an EMF line. */
  readonly stats?: StatsOptions;
  /** The operator's rules and how their targets are reached (functions/rules-config.ts); none: no rules. */
  readonly rules?: RulesOptions;
}

export interface StatsOptions {
  /** Flush at most this often (default 10 s): one UpdateItem per process per interval, whatever the traffic. */
  readonly flushIntervalMs?: number;
  /** Prints each flush as a CloudWatch EMF line; none: only the counter items. */
  readonly emf?: EmfOptions & { readonly write: (line: string) => void };
}

export const DEFAULT_STATS_FLUSH_MS = 10_000;

/** The broker's dependencies, and what the API Gateway door and the sweeper need besides. */
export type RuntimeDeps = BrokerDeps & {
  security: BrokerSecurity;
  store: DynamoStore;
  securityStore: DynamoSecurityStore;
  gateway: ConnectionsApi;
  doors: DoorLimits;
  inbox: DynamoConnectionInbox;
  directory: DynamoConnectionDirectory;
  stats: BrokerStats;
  statsStore: DynamoStatsStore;
};

export function createBrokerDeps(options: BrokerDepsOptions): RuntimeDeps {
  const retry = { ...defaultStoreRetry, ...options.storeRetry };
  const dynamoDb = new DynamoDBClient(dynamoDbClientConfig(options.dynamoDb ?? {}, retry));
  options.instrumentDynamoDb?.(dynamoDb);
  const client = DynamoDBDocumentClient.from(translateStoreErrors(dynamoDb), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  const securityStore = new DynamoSecurityStore({ client, table: options.tables.security });
  const doors = new DoorLimits(options.doors);
  const policy: SecurityPolicy = {
    ...(options.security ?? { allowAnonymous: false }),
    // Only API Gateway's connections pass through a `$connect` that may have checked a token.
    doorIdentityPossible: (connectionId) => doors.passesConnectRoute(connectionId),
  };
  const log = options.log ?? createJsonLogger();
  const statsStore = new DynamoStatsStore({ client, table: options.tables.sessions });
  const emf = options.stats?.emf;
  const stats = new BrokerStats(emf ? sinks(statsStore, emfSink(emf.write, emf)) : statsStore, {
    flushIntervalMs: options.stats?.flushIntervalMs ?? DEFAULT_STATS_FLUSH_MS,
  });
  const deps: RuntimeDeps & { fanout?: FanoutWorkers; rules?: RuleEngine } = {
    store: createDynamoStore({ client, tables: options.tables, stats }),
    stats,
    statsStore,
    security: new BrokerSecurity(policy, securityStore),
    securityStore,
    inbox: new DynamoConnectionInbox({ client, tableName: options.tables.inbox }),
    directory: new DynamoConnectionDirectory({ client, tableName: options.tables.connections }),
    gateway: new ConnectionsApi({ ...options.connections, log }),
    doors,
    log,
    config: { ...defaultBrokerConfig, ...options.config },
    now: Date.now,
  };
  if (options.fanout) deps.fanout = options.fanout(deps);
  if (options.rules && options.rules.rules.length > 0) deps.rules = createRuleEngine(options.rules, log, stats);
  return deps;
}

/** A client id no client can have (U+0000 is not allowed in one, [MQTT-1.5.4-2]): what priming reads. */
const PRIME_ID = '\u0000prime';

/**
 * What a cold start would otherwise do on its first packet, done once during init (a Lambda's
 * init phase, the harness's start): the DynamoDB client's sockets opened and the SDK's code paths
 * (signing, marshalling, the retry middleware) run, by reading an item that cannot exist from the
 * Connections and Sessions tables (two reads, a few read units per cold start). A failure is only logged: the first packet then pays as before.
 */
export async function primeDeps(deps: BrokerDeps): Promise<void> {
  const started = Date.now();
  const results = await Promise.allSettled([deps.store.connections.getConnection(PRIME_ID), deps.store.sessions.getSessions([PRIME_ID])]);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) deps.log.info('priming DynamoDB failed; the first packet will open its connections', { error: String(failed.reason) });
  else deps.log.info('primed DynamoDB', { ms: Date.now() - started });
}

/**
 * Environment: the table names (see shared/store/tables.ts), APIGW_MANAGEMENT_ENDPOINT, LOG_LEVEL,
 * FANOUT_FUNCTION (the fan-out worker's name; without it a handler delivers every part itself),
 * DELIVERY_SECRET_ARN (the secret that signs deliveries to the listener tasks; without it they
 * fail), MQTT_RULES_FILE (the rules, bundled with the function by the stack: functions/rules-config.ts), and the security settings and limits (functions/security-config.ts). In the cloud,
 * authentication is required unless MQTT_ALLOW_ANONYMOUS=true.
 */
export function brokerDepsFromEnv(env: NodeJS.ProcessEnv): RuntimeDeps {
  const fanoutFunction = env.FANOUT_FUNCTION;
  const log = createJsonLogger((env.LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const security = securityPolicyFromEnv(env, { allowAnonymous: false });
  log.info('security', { summary: describeSecurity(security) });
  const rules = rulesFromEnv(env);
  if (rules) log.info('rules', { rules: rules.map((rule) => `${rule.name}: ${rule.filter} -> ${rule.target.type}`) });
  return createBrokerDeps({
    ...(rules ? { rules: { rules, targets: awsRuleTargets() } } : {}),
    tables: tableNamesFromEnv(env),
    ...(fanoutFunction ? { fanout: () => new LambdaFanoutWorkers(new LambdaClient({}), fanoutFunction) } : {}),
    connections: {
      ...(env.APIGW_MANAGEMENT_ENDPOINT ? { apiGatewayEndpoint: env.APIGW_MANAGEMENT_ENDPOINT } : {}),
      ...(env.DELIVERY_SECRET_ARN ? { listenerSecret: deliverySecretFromSecretsManager(env.DELIVERY_SECRET_ARN) } : {}),
    },
    log,
    config: limitsFromEnv(env),
    security,
    stats: statsOptionsFromEnv(env),
  });
}

/**
 * MQTT_STATS_FLUSH_SECONDS (default 10) and METRICS_NAMESPACE / METRICS_STACK: with a namespace,
 * each flush is also printed as an EMF line, its metrics under the dimension `Stack`.
 */
export function statsOptionsFromEnv(env: NodeJS.ProcessEnv): StatsOptions {
  const seconds = Number(env.MQTT_STATS_FLUSH_SECONDS ?? DEFAULT_STATS_FLUSH_MS / 1000);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`MQTT_STATS_FLUSH_SECONDS must be a positive number of seconds, not "${env.MQTT_STATS_FLUSH_SECONDS}"`);
  const namespace = env.METRICS_NAMESPACE;
  return {
    flushIntervalMs: seconds * 1000,
    ...(namespace
      ? { emf: { namespace, dimensions: { Stack: env.METRICS_STACK ?? 'broker' }, write: (line: string) => void process.stdout.write(`${line}\n`) } }
      : {}),
  };
}

/**
 * What `$connect` needs, and no more: the token check and the Security table where it remembers
 * the identity (SECURITY_TABLE), with the security settings from the environment.
 */
export function securityDepsFromEnv(env: NodeJS.ProcessEnv): DoorSecurityDeps {
  const log = createJsonLogger((env.LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const table = env[securityTable.envVar];
  if (!table) throw new Error(`${securityTable.envVar} is not set: the deployment must pass the Security table name`);
  const client = DynamoDBDocumentClient.from(translateStoreErrors(new DynamoDBClient(dynamoDbClientConfig({}))), { marshallOptions: { removeUndefinedValues: true } });
  const policy: SecurityPolicy = { ...securityPolicyFromEnv(env, { allowAnonymous: false }), doorIdentityPossible: () => true };
  return { security: new BrokerSecurity(policy, new DynamoSecurityStore({ client, table })), log, now: Date.now };
}
