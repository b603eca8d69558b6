/** The broker's settings as CDK context: each reaches the functions and the listener that read it, and a mistake stops synthesis in one line. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { BROKER_SETTINGS, readBrokerSettings } from '../../infra/broker-settings';
import { logicalId, synthBroker } from './stack-fixture';

const read = (context: Record<string, unknown>) => readBrokerSettings(new App({ context }).node);

const CONTEXT = {
  allowAnonymous: 'true',
  jwtSecretName: 'mqtt/jwt-secret',
  jwtIssuer: 'https://issuer.example.com/',
  jwtAudience: 'mqtt',
  acl: 'readwrite devices/%u/#; read public/#',
  maxPacketSize: '65536',
  maxQueuedMessages: 500,
  publishRate: '100/1s',
  maxSessionsPerUser: 'off',
  maxConnectionsPerAddress: '50',
  batchWindowMs: '0',
};

describe('broker settings from the context', () => {
  const synthesized = synthBroker(CONTEXT);
  const { template, stack } = synthesized;
  const env = (fn: { node: { defaultChild?: unknown } }) =>
    template.findResources('AWS::Lambda::Function')[logicalId(synthesized, fn)]!.Properties.Environment.Variables as Record<string, unknown>;
  const brokerFunctions = { ...stack.handlers, fanout: stack.fanout, sweeper: stack.sweeper } as Record<string, { node: { defaultChild?: unknown } }>;
  delete brokerFunctions.wsConnect;

  it('every broker function gets the security settings and the limits', () => {
    for (const [name, fn] of Object.entries(brokerFunctions)) {
      expect(env(fn), name).toMatchObject({
        MQTT_ALLOW_ANONYMOUS: 'true',
        MQTT_JWT_ISSUER: 'https://issuer.example.com/',
        MQTT_JWT_AUDIENCE: 'mqtt',
        MQTT_ACL: 'readwrite devices/%u/#\nread public/#',
        MQTT_MAX_PACKET_SIZE: '65536',
        MQTT_MAX_QUEUED_MESSAGES: '500',
        MQTT_PUBLISH_RATE: '100/1s',
        MQTT_MAX_SESSIONS_PER_USER: 'off',
      });
      expect(env(fn), name).not.toHaveProperty('MQTT_MAX_CONNECTIONS_PER_ADDRESS');
    }
  });

  it('the JWT secret is a Secrets Manager reference CloudFormation resolves, never its value', () => {
    for (const fn of [...Object.values(brokerFunctions), stack.handlers.wsConnect]) {
      expect(JSON.stringify(env(fn).MQTT_JWT_SECRET)).toContain('{{resolve:secretsmanager:mqtt/jwt-secret:SecretString:::}}');
    }
  });

  it('$connect gets the security settings only', () => {
    const connect = env(stack.handlers.wsConnect);
    expect(Object.keys(connect).filter((k) => k.startsWith('MQTT_')).sort()).toEqual(
      ['MQTT_ACL', 'MQTT_ALLOW_ANONYMOUS', 'MQTT_JWT_AUDIENCE', 'MQTT_JWT_ISSUER', 'MQTT_JWT_SECRET'].sort(),
    );
  });

  it("the listener container gets the shared limits and its own, and no security setting", () => {
    const [task] = Object.values(template.findResources('AWS::ECS::TaskDefinition'));
    const container = task!.Properties.ContainerDefinitions[0] as { Environment: Array<{ Name: string; Value: unknown }> };
    const containerEnv = Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));
    expect(containerEnv).toMatchObject({ MQTT_MAX_PACKET_SIZE: '65536', MQTT_MAX_CONNECTIONS_PER_ADDRESS: '50', MQTT_BATCH_WINDOW_MS: '0', MQTT_PROXY_PROTOCOL: 'true' });
    for (const name of ['MQTT_ACL', 'MQTT_JWT_SECRET', 'MQTT_ALLOW_ANONYMOUS', 'MQTT_MAX_QUEUED_MESSAGES']) expect(containerEnv).not.toHaveProperty(name);
  });

  it('without settings, nothing is set and the functions keep their defaults (authentication required)', () => {
    expect(read({})).toEqual({ functions: {}, connect: {}, listener: {} });
    const { template: plain } = synthBroker();
    for (const fn of Object.values(plain.findResources('AWS::Lambda::Function'))) {
      expect(Object.keys(fn.Properties.Environment?.Variables ?? {}).filter((k) => k.startsWith('MQTT_'))).toEqual([]);
    }
  });

  it('every setting maps to a distinct variable the docs list', () => {
    expect(new Set(BROKER_SETTINGS.map((s) => s.envVar)).size).toBe(BROKER_SETTINGS.length);
    expect(new Set(BROKER_SETTINGS.map((s) => s.key)).size).toBe(BROKER_SETTINGS.length);
  });

  it('an ACL from cdk.json may be an array of rules', () => {
    expect(read({ acl: ['readwrite devices/%u/#', 'deny devices/secret/#'] }).functions.MQTT_ACL).toBe('readwrite devices/%u/#\ndeny devices/secret/#');
  });

  it.each([
    [{ jwtSecret: 'hunter2' }, /^context jwtSecret: never pass the JWT secret itself; put it in Secrets Manager and pass its name or ARN as jwtSecretName$/],
    [{ jwtAudience: 'mqtt' }, /^context jwtAudience needs a key to check tokens with: jwtSecretName, jwtPublicKey or jwtJwksUrl$/],
    [{ jwtJwksUrl: 'https://issuer.example.com/jwks', jwtIssuer: 'https://issuer.example.com/' }, /^context jwtAudience /],
    [{ jwtJwksUrl: 'http://issuer.example.com/jwks', jwtAudience: 'mqtt', jwtIssuer: 'x' }, /context jwtJwksUrl/],
    [{ allowAnonymous: 'maybe' }, /^context allowAnonymous must be true or false, got "maybe"$/],
    [{ maxPacketSize: 'big' }, /^context maxPacketSize must be a positive integer, got "big"$/],
    [{ publishRate: 'fast' }, /^context publishRate must look like 100\/1s/],
    [{ acl: 'read sensors/#/temp' }, /^context acl: /],
    [{ maxConnections: '0' }, /^context maxConnections /],
    [{ maxQueuedMessages: { many: true } }, /^context maxQueuedMessages must be a string, got/],
    [{ acl: Array.from({ length: 200 }, (_, i) => `read devices/${i}/#`) }, /^the broker settings take \d+ bytes of the functions' environment, which Lambda caps at 4 KB/],
  ])('rejects %j with one line naming the context key', (context, message) => {
    const error = (() => {
      try {
        read(context);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error?.name).toBe('DeployContextError');
    expect(error!.message).toMatch(message);
    expect(error!.message).not.toContain('\n');
  });

  it('the CDK app stops with that line and exit code 1', { timeout: 60_000 }, async () => {
    const failure = await promisify(execFile)('npx', ['tsx', 'infra/bin/app.ts'], { env: { ...process.env, CDK_CONTEXT_JSON: '{"maxPacketSize":"big"}' } }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure!.stderr.split('\n').filter((line) => line && !line.startsWith('npm warn'))).toEqual(['context maxPacketSize must be a positive integer, got "big"']);
  });
});
