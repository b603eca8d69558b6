/**
 * The broker's own settings (anonymous access, JWT, ACL, limits) from CDK context, turned into
 * the environment variables the functions (functions/security-config.ts) and the listener
 * container (functions/listener/listener-settings.ts) read. They are checked at synthesis by
 * those same readers, so a value the functions would refuse at start stops `cdk synth` instead,
 * with one line naming the context key. The JWT secret is never context: `jwtSecretName` names a
 * Secrets Manager secret, which CloudFormation resolves at deploy time.
 */
import { SecretValue } from 'aws-cdk-lib';
import type { Node } from 'constructs';
import { listenerSettingsFromEnv } from '../functions/listener/listener-settings';
import { ConfigurationError, limitsFromEnv, securityPolicyFromEnv } from '../functions/security-config';
import { DeployContextError } from './deploy-context';

/** Who reads a setting: the broker functions and `$connect`, the broker functions, both them and the listener, or the listener alone. */
export type SettingReaders = 'security' | 'functions' | 'functions and listener' | 'listener';

export interface BrokerSetting {
  readonly key: string;
  readonly envVar: string;
  readonly readers: SettingReaders;
}

const setting = (key: string, envVar: string, readers: SettingReaders): BrokerSetting => ({ key, envVar, readers });

/** Every setting the context can give, in the order docs/configuration.md lists them. */
export const BROKER_SETTINGS: readonly BrokerSetting[] = [
  setting('allowAnonymous', 'MQTT_ALLOW_ANONYMOUS', 'security'),
  setting('jwtSecretName', 'MQTT_JWT_SECRET', 'security'),
  setting('jwtPublicKey', 'MQTT_JWT_PUBLIC_KEY', 'security'),
  setting('jwtJwksUrl', 'MQTT_JWT_JWKS_URL', 'security'),
  setting('jwtIssuer', 'MQTT_JWT_ISSUER', 'security'),
  setting('jwtAudience', 'MQTT_JWT_AUDIENCE', 'security'),
  setting('jwtUsernameClaim', 'MQTT_JWT_USERNAME_CLAIM', 'security'),
  setting('jwtAclClaim', 'MQTT_JWT_ACL_CLAIM', 'security'),
  setting('acl', 'MQTT_ACL', 'security'),
  setting('maxPacketSize', 'MQTT_MAX_PACKET_SIZE', 'functions and listener'),
  setting('maxKeepAlive', 'MQTT_MAX_KEEPALIVE', 'functions and listener'),
  setting('maxTopicLength', 'MQTT_MAX_TOPIC_LENGTH', 'functions'),
  setting('maxTopicLevels', 'MQTT_MAX_TOPIC_LEVELS', 'functions'),
  setting('maxSubscriptions', 'MQTT_MAX_SUBSCRIPTIONS', 'functions'),
  setting('maxInflight', 'MQTT_MAX_INFLIGHT', 'functions'),
  setting('maxClientIdLength', 'MQTT_MAX_CLIENT_ID_LENGTH', 'functions'),
  setting('maxSessionExpiry', 'MQTT_MAX_SESSION_EXPIRY', 'functions'),
  setting('maxQueuedMessages', 'MQTT_MAX_QUEUED_MESSAGES', 'functions'),
  setting('maxQueuedBytes', 'MQTT_MAX_QUEUED_BYTES', 'functions'),
  setting('maxRetainedReplay', 'MQTT_MAX_RETAINED_REPLAY', 'functions'),
  setting('maxSessionsPerUser', 'MQTT_MAX_SESSIONS_PER_USER', 'functions'),
  setting('maxSubscriptionsPerUser', 'MQTT_MAX_SUBSCRIPTIONS_PER_USER', 'functions'),
  setting('maxRetainedPerUser', 'MQTT_MAX_RETAINED_PER_USER', 'functions'),
  setting('publishRate', 'MQTT_PUBLISH_RATE', 'functions'),
  setting('connectRate', 'MQTT_CONNECT_RATE', 'functions'),
  setting('connectTimeoutMs', 'MQTT_CONNECT_TIMEOUT_MS', 'listener'),
  setting('maxOutboundBuffer', 'MQTT_MAX_OUTBOUND_BUFFER', 'listener'),
  setting('maxConnectPacketSize', 'MQTT_MAX_CONNECT_PACKET_SIZE', 'listener'),
  setting('maxConnections', 'MQTT_MAX_CONNECTIONS', 'listener'),
  setting('maxConnectionsPerAddress', 'MQTT_MAX_CONNECTIONS_PER_ADDRESS', 'listener'),
  setting('batchWindowMs', 'MQTT_BATCH_WINDOW_MS', 'listener'),
];

/** The environment each reader gets; only the settings the context gives. */
export interface BrokerEnvironment {
  /** Every broker function (packet handler, `$default`, `$disconnect`, fan-out, sweeper). */
  readonly functions: Readonly<Record<string, string>>;
  /** `$connect`: the security settings (it checks a `?token=` JWT). */
  readonly connect: Readonly<Record<string, string>>;
  /** The listener container. */
  readonly listener: Readonly<Record<string, string>>;
}

/** Lambda's environment holds 4 KB in all; the table names, endpoints and ARNs take about 1 KB. */
const SETTINGS_BUDGET = 2800;

/** A JWT secret of checkable length, standing in at synthesis for the one CloudFormation resolves later. */
const SECRET_STAND_IN = 'synth-time-stand-in-for-the-jwt-secret-0123456789abcdef';

export function readBrokerSettings(node: Node): BrokerEnvironment {
  for (const plain of ['jwtSecret', 'MQTT_JWT_SECRET']) {
    if (node.tryGetContext(plain) !== undefined) {
      throw new DeployContextError(`context ${plain}: never pass the JWT secret itself; put it in Secrets Manager and pass its name or ARN as jwtSecretName`);
    }
  }
  const given = new Map<BrokerSetting, string>();
  for (const s of BROKER_SETTINGS) {
    const value = contextString(node.tryGetContext(s.key), s.key);
    if (value !== undefined) given.set(s, value);
  }
  const valueOf = (s: BrokerSetting, value: string): string =>
    s.key === 'jwtSecretName' ? SecretValue.secretsManager(value).unsafeUnwrap() : value;
  const envFor = (readers: readonly SettingReaders[]) =>
    Object.fromEntries([...given].filter(([s]) => readers.includes(s.readers)).map(([s, value]) => [s.envVar, valueOf(s, value)]));

  check(given);
  const size = [...given].reduce((sum, [s, value]) => sum + s.envVar.length + value.length, 0);
  if (size > SETTINGS_BUDGET) {
    throw new DeployContextError(
      `the broker settings take ${size} bytes of the functions' environment, which Lambda caps at 4 KB in all (table names and endpoints included; at most ${SETTINGS_BUDGET} for these): put per-user rules in the Security table (npm run users -- add <name> --acl ...) or a JWT's acl claim`,
    );
  }
  return {
    functions: envFor(['security', 'functions', 'functions and listener']),
    connect: envFor(['security']),
    listener: envFor(['functions and listener', 'listener']),
  };
}

/** Runs the functions' and the listener's own readers over the settings; their one line, in terms of context keys. */
function check(given: ReadonlyMap<BrokerSetting, string>): void {
  const env = Object.fromEntries([...given].map(([s, value]) => [s.envVar, s.key === 'jwtSecretName' ? SECRET_STAND_IN : value]));
  const jwtKeys = [...given.keys()].filter((s) => s.key.startsWith('jwt'));
  if (jwtKeys.length > 0 && !env.MQTT_JWT_SECRET && !env.MQTT_JWT_PUBLIC_KEY && !env.MQTT_JWT_JWKS_URL) {
    throw new DeployContextError(`context ${jwtKeys[0]!.key} needs a key to check tokens with: jwtSecretName, jwtPublicKey or jwtJwksUrl`);
  }
  try {
    securityPolicyFromEnv(env, { allowAnonymous: false });
    limitsFromEnv(env);
    listenerSettingsFromEnv(env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    let message = error.message;
    for (const s of BROKER_SETTINGS) message = message.replaceAll(s.envVar, `context ${s.key}`);
    throw new DeployContextError(message.replaceAll(SECRET_STAND_IN, '<secret>'));
  }
}

/** `-c` gives strings; cdk.json may give numbers, booleans, or an array (ACL rules). `-c acl` separates rules with `;`. */
function contextString(value: unknown, key: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string') return key === 'acl' ? value.split(';').map((rule) => rule.trim()).join('\n') : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (key === 'acl' && Array.isArray(value) && value.every((rule) => typeof rule === 'string')) return value.join('\n');
  throw new DeployContextError(`context ${key} must be a string${key === 'acl' ? ' (rules separated by ;) or an array of rules' : ''}, got ${JSON.stringify(value)}`);
}
