import { describe, expect, it } from 'vitest';
import { brokerDepsFromEnv } from '../../functions/runtime';
import { ConfigurationError, limitsFromEnv, securityPolicyFromEnv } from '../../functions/security-config';
import { DEFAULT_AUTH_FAILURE_RATE } from '../../shared/security/broker-security';

const tables = { CONNECTIONS_TABLE: 'c', SESSIONS_TABLE: 's', SUBSCRIPTIONS_TABLE: 'u', SECURITY_TABLE: 'x', RETAINED_TABLE: 'r', INBOX_TABLE: 'i', LOG_LEVEL: 'silent' };

describe('security configuration from the environment', () => {
  it('the cloud entry points require authentication unless MQTT_ALLOW_ANONYMOUS=true', () => {
    expect(brokerDepsFromEnv(tables).security.policy.allowAnonymous).toBe(false);
    expect(brokerDepsFromEnv({ ...tables, MQTT_ALLOW_ANONYMOUS: 'true' }).security.policy.allowAnonymous).toBe(true);
  });

  it('reads limits, and "off" removes a rate limit that is on by default', () => {
    expect(limitsFromEnv({ MQTT_MAX_TOPIC_LEVELS: '8', MQTT_PUBLISH_RATE: '100/1s', MQTT_CONNECT_RATE: 'off' })).toEqual({
      maxTopicLevels: 8,
      publishRate: { count: 100, perSeconds: 1 },
      connectRate: undefined,
    });
    expect(brokerDepsFromEnv({ ...tables, MQTT_CONNECT_RATE: 'off' }).config.connectRate).toBeUndefined();
    expect(() => limitsFromEnv({ MQTT_MAX_SUBSCRIPTIONS: '-1' })).toThrow(ConfigurationError);
    expect(limitsFromEnv({ MQTT_MAX_SESSION_EXPIRY: '3600', MQTT_MAX_QUEUED_MESSAGES: '50', MQTT_MAX_RETAINED_REPLAY: '20', MQTT_MAX_KEEPALIVE: '60' })).toEqual({
      maxKeepAlive: 60,
      maxSessionExpiry: 3600,
      maxQueuedMessages: 50,
      maxRetainedReplay: 20,
    });
  });

  it('failed password checks per address: 20/60s unless MQTT_AUTH_FAILURE_RATE says otherwise or "off"; MQTT_AUTH_CACHE_ENTRIES', () => {
    expect(securityPolicyFromEnv({}, { allowAnonymous: false })).not.toHaveProperty('authFailureRate');
    expect(DEFAULT_AUTH_FAILURE_RATE).toEqual({ count: 20, perSeconds: 60 });
    expect(securityPolicyFromEnv({ MQTT_AUTH_FAILURE_RATE: '5/300s', MQTT_AUTH_CACHE_ENTRIES: '100' }, { allowAnonymous: false })).toMatchObject({
      authFailureRate: { count: 5, perSeconds: 300 },
      passwordCacheEntries: 100,
    });
    expect(securityPolicyFromEnv({ MQTT_AUTH_FAILURE_RATE: 'off', MQTT_AUTH_CACHE_ENTRIES: '0' }, { allowAnonymous: false })).toMatchObject({ authFailureRate: null, passwordCacheEntries: 0 });
    expect(() => securityPolicyFromEnv({ MQTT_AUTH_FAILURE_RATE: 'lots' }, { allowAnonymous: false })).toThrow(/MQTT_AUTH_FAILURE_RATE must look like/);
    expect(() => securityPolicyFromEnv({ MQTT_AUTH_CACHE_ENTRIES: '-1' }, { allowAnonymous: false })).toThrow(ConfigurationError);
  });

  it('an ACL set to nothing still turns authorization on; JWT needs a key source', () => {
    expect(securityPolicyFromEnv({ MQTT_ACL: '' }, { allowAnonymous: true }).acl).toEqual([]);
    expect(securityPolicyFromEnv({}, { allowAnonymous: true }).acl).toBeUndefined();
    expect(securityPolicyFromEnv({ MQTT_JWT_ISSUER: 'x' }, { allowAnonymous: true }).jwt).toBeUndefined();
    expect(securityPolicyFromEnv({ MQTT_JWT_SECRET: 's'.repeat(32), MQTT_JWT_AUDIENCE: 'mqtt' }, { allowAnonymous: true }).jwt).toBeDefined();
    expect(() => securityPolicyFromEnv({ MQTT_ACL_FILE: '/nonexistent/acl' }, { allowAnonymous: true })).toThrow(/cannot read the ACL file \/nonexistent\/acl: ENOENT/);
  });

  it('JWT: one line naming the setting when the audience is missing, a JWKS URL is not https or comes without an issuer', () => {
    const error = (env: Record<string, string | undefined>): string => {
      try {
        securityPolicyFromEnv(env, { allowAnonymous: false });
        return 'no error';
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigurationError);
        return (e as Error).message;
      }
    };
    for (const source of [{ MQTT_JWT_SECRET: 's'.repeat(32) }, { MQTT_JWT_PUBLIC_KEY: 'pem' }, { MQTT_JWT_JWKS_URL: 'https://id.example/jwks.json', MQTT_JWT_ISSUER: 'https://id.example' }]) {
      expect(error(source)).toMatch(/^MQTT_JWT_AUDIENCE must be set when JWT authentication is on: /);
    }
    expect(error({ MQTT_JWT_JWKS_URL: 'http://id.example/jwks.json', MQTT_JWT_AUDIENCE: 'mqtt', MQTT_JWT_ISSUER: 'https://id.example' })).toBe(
      'MQTT_JWT_JWKS_URL must be an https:// URL (plain http only on loopback), got "http://id.example/jwks.json"',
    );
    expect(error({ MQTT_JWT_JWKS_URL: 'https://id.example/jwks.json', MQTT_JWT_AUDIENCE: 'mqtt' })).toMatch(/^MQTT_JWT_ISSUER must be set with a JWKS URL: /);
    expect(error({ MQTT_JWT_JWKS_URL: 'https://id.example/jwks.json', MQTT_JWT_AUDIENCE: 'mqtt', MQTT_JWT_ISSUER: 'https://id.example' })).toBe('no error');
    for (const message of [error({ MQTT_JWT_SECRET: 's'.repeat(32) }), error({ MQTT_JWT_JWKS_URL: 'http://id.example/k', MQTT_JWT_AUDIENCE: 'a', MQTT_JWT_ISSUER: 'i' })]) {
      expect(message).not.toContain('\n');
    }
  });
});
