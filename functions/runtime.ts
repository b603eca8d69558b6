/**
 * Builds the broker's dependencies: from the environment in the cloud (once per Lambda
 * container, at module scope), or from explicit options in the local harness.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { defaultBrokerConfig, type BrokerConfig, type BrokerDeps } from '../shared/broker/context';
import { createJsonLogger, type LogLevel } from '../shared/broker/logger';
import type { Logger } from '../shared/broker/ports';
import { listenerEndpointOf } from '../shared/gateway/connection-id';
import { ConnectionsApi, type ConnectionsApiOptions } from '../shared/gateway/connections-api';
import { BrokerSecurity, type SecurityPolicy } from '../shared/security/broker-security';
import { DynamoSecurityStore } from '../shared/store/dynamo-security';
import { DynamoBrokerStore } from '../shared/store/dynamo-store';
import { tableNamesFromEnv, type TableNames } from '../shared/store/tables';
import { describeSecurity, limitsFromEnv, securityPolicyFromEnv } from './security-config';

export interface BrokerDepsOptions {
  readonly tables: TableNames;
  readonly dynamoDb?: DynamoDBClientConfig;
  readonly connections?: ConnectionsApiOptions;
  readonly log?: Logger;
  readonly config?: Partial<BrokerConfig>;
  /** Authentication and ACL; default: authentication required, no ACL. */
  readonly security?: SecurityPolicy;
}

export function createBrokerDeps(options: BrokerDepsOptions): BrokerDeps & { store: DynamoBrokerStore; securityStore: DynamoSecurityStore } {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient(options.dynamoDb ?? {}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  const securityStore = new DynamoSecurityStore({ client, table: options.tables.security });
  const policy: SecurityPolicy = {
    ...(options.security ?? { allowAnonymous: false }),
    // Only API Gateway's connections pass through a `$connect` that may have checked a token.
    doorIdentityPossible: (connectionId) => listenerEndpointOf(connectionId) === undefined,
  };
  return {
    store: new DynamoBrokerStore({ client, tables: options.tables }),
    security: new BrokerSecurity(policy, securityStore),
    securityStore,
    gateway: new ConnectionsApi(options.connections ?? {}),
    log: options.log ?? createJsonLogger(),
    config: { ...defaultBrokerConfig, ...options.config },
    now: Date.now,
  };
}

/**
 * Environment: the table names (see shared/store/tables.ts), APIGW_MANAGEMENT_ENDPOINT, LOG_LEVEL,
 * and the security settings and limits (functions/security-config.ts). In the cloud,
 * authentication is required unless MQTT_ALLOW_ANONYMOUS=true.
 */
export function brokerDepsFromEnv(env: NodeJS.ProcessEnv): BrokerDeps {
  const log = createJsonLogger((env.LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const security = securityPolicyFromEnv(env, { allowAnonymous: false });
  log.info('security', { summary: describeSecurity(security) });
  return createBrokerDeps({
    tables: tableNamesFromEnv(env),
    ...(env.APIGW_MANAGEMENT_ENDPOINT ? { connections: { apiGatewayEndpoint: env.APIGW_MANAGEMENT_ENDPOINT } } : {}),
    log,
    config: limitsFromEnv(env),
    security,
  });
}
