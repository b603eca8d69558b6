import { describe, expect, it } from 'vitest';
import { brokerDepsFromEnv } from '../../functions/runtime';
import { ConfigurationError, limitsFromEnv, securityPolicyFromEnv } from '../../functions/security-config';

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
  });

  it('an ACL set to nothing still turns authorization on; JWT needs a key source', () => {
    expect(securityPolicyFromEnv({ MQTT_ACL: '' }, { allowAnonymous: true }).acl).toEqual([]);
    expect(securityPolicyFromEnv({}, { allowAnonymous: true }).acl).toBeUndefined();
    expect(securityPolicyFromEnv({ MQTT_JWT_ISSUER: 'x' }, { allowAnonymous: true }).jwt).toBeUndefined();
    expect(securityPolicyFromEnv({ MQTT_JWT_SECRET: 's'.repeat(32) }, { allowAnonymous: true }).jwt).toBeDefined();
    expect(() => securityPolicyFromEnv({ MQTT_ACL_FILE: '/nonexistent/acl' }, { allowAnonymous: true })).toThrow(/cannot read the ACL file \/nonexistent\/acl: ENOENT/);
  });
});
