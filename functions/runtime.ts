/**
 * Builds the broker's dependencies: from the environment in the cloud (once per Lambda
 * container, at module scope), or from explicit options in the local harness.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { defaultBrokerConfig, type BrokerConfig, type BrokerDeps } from '../shared/broker/context';
import { createJsonLogger, type LogLevel } from '../shared/broker/logger';
import type { FanoutWorkers } from '../shared/broker/fanout';
import type { Logger } from '../shared/broker/ports';
import { LambdaFanoutWorkers } from '../shared/gateway/lambda-fanout';
import { ConnectionsApi, type ConnectionsApiOptions } from '../shared/gateway/connections-api';
import { DynamoConnectionDirectory } from '../shared/store/dynamo-connection-directory';
import { DynamoConnectionInbox } from '../shared/store/dynamo-inbox';
import { DynamoBrokerStore } from '../shared/store/dynamo-store';
import { tableNamesFromEnv, type TableNames } from '../shared/store/tables';

export interface BrokerDepsOptions {
  readonly tables: TableNames;
  readonly dynamoDb?: DynamoDBClientConfig;
  readonly connections?: ConnectionsApiOptions;
  readonly log?: Logger;
  readonly config?: Partial<BrokerConfig>;
  /** Large fan-outs are split across these; built from the deps (the local harness runs them in-process). */
  readonly fanout?: (deps: BrokerDeps) => FanoutWorkers;
}

/** The broker's dependencies, and what the API Gateway door and the sweeper need besides. */
export type RuntimeDeps = BrokerDeps & {
  store: DynamoBrokerStore;
  gateway: ConnectionsApi;
  inbox: DynamoConnectionInbox;
  directory: DynamoConnectionDirectory;
};

export function createBrokerDeps(options: BrokerDepsOptions): RuntimeDeps {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient(options.dynamoDb ?? {}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  const deps: RuntimeDeps & { fanout?: FanoutWorkers } = {
    store: new DynamoBrokerStore({ client, tables: options.tables }),
    inbox: new DynamoConnectionInbox({ client, tableName: options.tables.inbox }),
    directory: new DynamoConnectionDirectory({ client, tableName: options.tables.connections }),
    gateway: new ConnectionsApi(options.connections ?? {}),
    log: options.log ?? createJsonLogger(),
    config: { ...defaultBrokerConfig, ...options.config },
    now: Date.now,
  };
  if (options.fanout) deps.fanout = options.fanout(deps);
  return deps;
}

/**
 * Environment: the table names (see shared/store/tables.ts), APIGW_MANAGEMENT_ENDPOINT, LOG_LEVEL,
 * FANOUT_FUNCTION (the fan-out worker's name; without it a handler delivers every part itself).
 */
export function brokerDepsFromEnv(env: NodeJS.ProcessEnv): RuntimeDeps {
  const fanoutFunction = env.FANOUT_FUNCTION;
  return createBrokerDeps({
    tables: tableNamesFromEnv(env),
    ...(fanoutFunction ? { fanout: () => new LambdaFanoutWorkers(new LambdaClient({}), fanoutFunction) } : {}),
    ...(env.APIGW_MANAGEMENT_ENDPOINT ? { connections: { apiGatewayEndpoint: env.APIGW_MANAGEMENT_ENDPOINT } } : {}),
    log: createJsonLogger((env.LOG_LEVEL as LogLevel | undefined) ?? 'info'),
  });
}
