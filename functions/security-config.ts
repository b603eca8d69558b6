/**
 * Security settings and limits from environment variables, read once by an entry point (the
 * Lambda functions, and `npm start`, whose flags override them). A bad value stops the entry point
 * with one line saying what to set.
 *
 *   MQTT_ALLOW_ANONYMOUS     true | false (the cloud's default: false; npm start's: true)
 *   MQTT_JWT_SECRET | MQTT_JWT_PUBLIC_KEY | MQTT_JWT_JWKS_URL   one key source turns JWTs on
 *                            (the JWKS URL https, or http on loopback)
 *   MQTT_JWT_AUDIENCE        required with JWT; MQTT_JWT_ISSUER required with a JWKS URL
 *   MQTT_JWT_USERNAME_CLAIM (sub), MQTT_JWT_ACL_CLAIM (acl)
 *   MQTT_ACL                 ACL rules, one per line (or MQTT_ACL_FILE: a file of them)
 *   MQTT_MAX_PACKET_SIZE, MQTT_MAX_TOPIC_LENGTH, MQTT_MAX_TOPIC_LEVELS, MQTT_MAX_SUBSCRIPTIONS,
 *   MQTT_MAX_INFLIGHT, MQTT_MAX_CLIENT_ID_LENGTH,
 *   MQTT_MAX_SESSION_EXPIRY (seconds), MQTT_MAX_QUEUED_MESSAGES, MQTT_MAX_QUEUED_BYTES,
 *   MQTT_MAX_RETAINED_REPLAY, MQTT_MAX_KEEPALIVE (seconds) positive integers
 *   MQTT_MAX_SESSIONS_PER_USER, MQTT_MAX_SUBSCRIPTIONS_PER_USER,
 *   MQTT_MAX_RETAINED_PER_USER                          a positive integer or off
 *   MQTT_PUBLISH_RATE, MQTT_CONNECT_RATE               <count>/<seconds>s (e.g. 100/1s) or off
 *   MQTT_CONNECT_TIMEOUT_MS  the listener's deadline for a socket's CONNECT (10000)
 *   MQTT_AUTH_FAILURE_RATE   failed password checks per source address before they are refused
 *                            unhashed: <count>/<seconds>s or off (20/60s)
 *   MQTT_AUTH_CACHE_ENTRIES  recent password checks remembered per container, accepted and
 *                            refused each (10000; 0 remembers none)
 */
import { readFileSync } from 'node:fs';
import type { BrokerConfig, RateLimit } from '../shared/broker/context';
import { AclSyntaxError, parseAcl, type AclRule } from '../shared/security/acl';
import { createJwtVerifier, JwtOptionsError, type JwtOptions } from '../shared/security/jwt';
import type { SecurityPolicy } from '../shared/security/broker-security';

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

type Env = Readonly<Record<string, string | undefined>>;

const set = (value: string | undefined): value is string => value !== undefined && value !== '';

export function booleanSetting(env: Env, name: string, fallback: boolean): boolean {
  const value = env[name];
  if (!set(value)) return fallback;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new ConfigurationError(`${name} must be true or false, got "${value}"`);
}

function positiveInteger(env: Env, name: string): number | undefined {
  const value = env[name];
  if (!set(value)) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigurationError(`${name} must be a positive integer, got "${value}"`);
  return n;
}

/** `100/1s`, `20/60s` (the `s` is optional), or `off`. Undefined = not set. */
export function rateSetting(env: Env, name: string): RateLimit | null | undefined {
  const value = env[name];
  if (!set(value)) return undefined;
  if (value === 'off') return null;
  const match = /^(\d+)\/(\d+)s?$/.exec(value.trim());
  const count = Number(match?.[1]);
  const perSeconds = Number(match?.[2]);
  if (!match || count <= 0 || perSeconds <= 0) {
    throw new ConfigurationError(`${name} must look like 100/1s (count per seconds) or be "off", got "${value}"`);
  }
  return { count, perSeconds };
}

/** The limits that are set; the rest keep defaultBrokerConfig's values. */
export function limitsFromEnv(env: Env): Partial<BrokerConfig> {
  const entries: Array<[keyof BrokerConfig, number | undefined]> = [
    ['maximumPacketSize', positiveInteger(env, 'MQTT_MAX_PACKET_SIZE')],
    ['maxTopicLength', positiveInteger(env, 'MQTT_MAX_TOPIC_LENGTH')],
    ['maxTopicLevels', positiveInteger(env, 'MQTT_MAX_TOPIC_LEVELS')],
    ['maxSubscriptionsPerClient', positiveInteger(env, 'MQTT_MAX_SUBSCRIPTIONS')],
    ['receiveMaximum', positiveInteger(env, 'MQTT_MAX_INFLIGHT')],
    ['maxClientIdLength', positiveInteger(env, 'MQTT_MAX_CLIENT_ID_LENGTH')],
    ['maxSessionExpiry', positiveInteger(env, 'MQTT_MAX_SESSION_EXPIRY')],
    ['maxQueuedMessages', positiveInteger(env, 'MQTT_MAX_QUEUED_MESSAGES')],
    ['maxQueuedBytes', positiveInteger(env, 'MQTT_MAX_QUEUED_BYTES')],
    ['maxRetainedReplay', positiveInteger(env, 'MQTT_MAX_RETAINED_REPLAY')],
    ['maxKeepAlive', positiveInteger(env, 'MQTT_MAX_KEEPALIVE')],
  ];
  const config: Record<string, unknown> = Object.fromEntries(entries.filter(([, v]) => v !== undefined));
  // `off` removes a limit that is on by default.
  for (const [key, name] of [
    ['maxSessionsPerUser', 'MQTT_MAX_SESSIONS_PER_USER'],
    ['maxRetainedPerUser', 'MQTT_MAX_RETAINED_PER_USER'],
    ['maxSubscriptionsPerUser', 'MQTT_MAX_SUBSCRIPTIONS_PER_USER'],
  ] as const) {
    if (env[name] === 'off') config[key] = undefined;
    else if (positiveInteger(env, name) !== undefined) config[key] = positiveInteger(env, name);
  }
  for (const [key, name] of [['publishRate', 'MQTT_PUBLISH_RATE'], ['connectRate', 'MQTT_CONNECT_RATE']] as const) {
    const rate = rateSetting(env, name);
    if (rate !== undefined) config[key] = rate ?? undefined;
  }
  return config as Partial<BrokerConfig>;
}

/** The listener's share of the limits: the same packet size and maximum keep-alive as the handlers, and the CONNECT deadline. */
export function listenerLimitsFromEnv(env: Env): { maximumPacketSize?: number; maxKeepAlive?: number; connectTimeoutMs?: number } {
  const maximumPacketSize = positiveInteger(env, 'MQTT_MAX_PACKET_SIZE');
  const maxKeepAlive = positiveInteger(env, 'MQTT_MAX_KEEPALIVE');
  const connectTimeoutMs = positiveInteger(env, 'MQTT_CONNECT_TIMEOUT_MS');
  return {
    ...(maximumPacketSize ? { maximumPacketSize } : {}),
    ...(maxKeepAlive ? { maxKeepAlive } : {}),
    ...(connectTimeoutMs ? { connectTimeoutMs } : {}),
  };
}

/** The ACL rules from MQTT_ACL or MQTT_ACL_FILE; undefined when neither is set. */
export function aclFromEnv(env: Env): AclRule[] | undefined {
  let text: string | undefined;
  let source = 'MQTT_ACL';
  if (env.MQTT_ACL !== undefined) text = env.MQTT_ACL;
  else if (set(env.MQTT_ACL_FILE)) {
    source = `MQTT_ACL_FILE (${env.MQTT_ACL_FILE})`;
    try {
      text = readFileSync(env.MQTT_ACL_FILE, 'utf8');
    } catch (error) {
      throw new ConfigurationError(`cannot read the ACL file ${env.MQTT_ACL_FILE}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  if (text === undefined) return undefined;
  try {
    return parseAcl(text);
  } catch (error) {
    if (error instanceof AclSyntaxError) throw new ConfigurationError(`${source}: ${error.message}`);
    throw error;
  }
}

const JWT_SETTINGS: Record<keyof JwtOptions, string> = {
  secret: 'MQTT_JWT_SECRET',
  publicKey: 'MQTT_JWT_PUBLIC_KEY',
  jwksUrl: 'MQTT_JWT_JWKS_URL',
  issuer: 'MQTT_JWT_ISSUER',
  audience: 'MQTT_JWT_AUDIENCE',
  usernameClaim: 'MQTT_JWT_USERNAME_CLAIM',
  aclClaim: 'MQTT_JWT_ACL_CLAIM',
};

export function jwtOptionsFromEnv(env: Env): JwtOptions | undefined {
  const options: Record<string, string> = {};
  for (const [key, name] of Object.entries(JWT_SETTINGS)) if (set(env[name])) options[key] = env[name]!;
  if (!options.secret && !options.publicKey && !options.jwksUrl) return undefined;
  return options;
}

/** The security policy from the environment; `allowAnonymous` is the default when unset. */
export function securityPolicyFromEnv(env: Env, defaults: { allowAnonymous: boolean }): SecurityPolicy {
  const jwtOptions = jwtOptionsFromEnv(env);
  let jwt;
  try {
    jwt = jwtOptions ? createJwtVerifier(jwtOptions) : undefined;
  } catch (error) {
    if (error instanceof JwtOptionsError) throw new ConfigurationError(`${JWT_SETTINGS[error.option]} ${error.problem}`);
    throw new ConfigurationError(`MQTT_JWT_*: ${(error as Error).message}`);
  }
  const acl = aclFromEnv(env);
  const authFailureRate = rateSetting(env, 'MQTT_AUTH_FAILURE_RATE');
  const cacheEntries = env.MQTT_AUTH_CACHE_ENTRIES === '0' ? 0 : positiveInteger(env, 'MQTT_AUTH_CACHE_ENTRIES');
  return {
    allowAnonymous: booleanSetting(env, 'MQTT_ALLOW_ANONYMOUS', defaults.allowAnonymous),
    ...(jwt ? { jwt } : {}),
    ...(acl ? { acl } : {}),
    ...(authFailureRate !== undefined ? { authFailureRate } : {}),
    ...(cacheEntries !== undefined ? { passwordCacheEntries: cacheEntries } : {}),
  };
}

/** One line for logs and `npm start`: how clients are checked. */
export function describeSecurity(policy: SecurityPolicy): string {
  const ways = ['user name and password'];
  if (policy.jwt) ways.push('JWT');
  const anonymous = policy.allowAnonymous ? 'anonymous clients ALLOWED (set MQTT_ALLOW_ANONYMOUS=false or --no-anonymous to require authentication)' : 'anonymous clients refused';
  const acl = policy.acl ? `ACL of ${policy.acl.length} rule(s)` : 'no ACL (clients without rules of their own may use any topic)';
  return `authentication: ${ways.join(' or ')}; ${anonymous}; ${acl}`;
}
