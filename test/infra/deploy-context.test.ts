/** The stack's CDK context: sensible defaults, and one line saying what to pass when something is wrong. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { App, RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { readDeployContext } from '../../infra/deploy-context';
import { TEST_CERTIFICATE_ARN } from './stack-fixture';

const read = (context: Record<string, unknown>) => readDeployContext(new App({ context }).node);
const withCertificate = (context: Record<string, unknown> = {}) => read({ certificateArn: TEST_CERTIFICATE_ARN, ...context });

describe('deploy context', () => {
  it('defaults: TLS only, retained data, one to four listener tasks, one NAT gateway, 30-day logs', () => {
    expect(withCertificate()).toEqual({
      certificate: { kind: 'arn', certificateArn: TEST_CERTIFICATE_ARN },
      plainMqtt: false,
      removalPolicy: RemovalPolicy.RETAIN,
      minListenerTasks: 1,
      maxListenerTasks: 4,
      natGateways: 1,
      logRetention: RetentionDays.ONE_MONTH,
      logLevel: 'info',
    });
  });

  it('reads strings from -c and typed values from cdk.json alike', () => {
    expect(withCertificate({ plainMqtt: 'true', minListenerTasks: '2', natGateways: 2, logRetentionDays: '90', alarmEmail: 'ops@example.com' })).toMatchObject({
      plainMqtt: true,
      minListenerTasks: 2,
      maxListenerTasks: 4,
      natGateways: 2,
      logRetention: RetentionDays.THREE_MONTHS,
      alarmEmail: 'ops@example.com',
    });
    expect(withCertificate({ plainMqtt: true }).plainMqtt).toBe(true);
  });

  it('a domain and a hosted zone create a DNS-validated certificate', () => {
    expect(read({ domainName: 'mqtt.example.com', hostedZoneId: 'Z0123456789ABC' }).certificate).toEqual({
      kind: 'dns-validated',
      domainName: 'mqtt.example.com',
      hostedZoneId: 'Z0123456789ABC',
    });
  });

  it("with neither, the stack's own CA makes the certificate", () => {
    expect(read({}).certificate).toEqual({ kind: 'stack' });
    expect(read({ certificateArn: '', domainName: '' }).certificate).toEqual({ kind: 'stack' });
  });

  it('a half-given or malformed certificate says which context to pass', () => {
    expect(() => read({ domainName: 'mqtt.example.com' })).toThrow(/domainName needs hostedZoneId/);
    expect(() => read({ hostedZoneId: 'Z0123456789ABC' })).toThrow(/hostedZoneId needs domainName too .*: pass -c certificateArn=.*-c domainName=.*or neither/);
    expect(() => read({ certificateArn: 'my-cert' })).toThrow(/certificateArn is not an ACM certificate ARN/);
  });

  it.each([
    [{ plainMqtt: 'yes' }, /plainMqtt must be true or false/],
    [{ minListenerTasks: '0' }, /minListenerTasks must be a whole number from 1/],
    [{ minListenerTasks: '3', maxListenerTasks: '2' }, /maxListenerTasks must be a whole number from 3/],
    [{ natGateways: '3' }, /natGateways must be a whole number from 1 to 2/],
    [{ logRetentionDays: '10' }, /logRetentionDays must be one of CloudWatch's retention periods/],
    [{ logLevel: 'debug' }, /logLevel must be 'info' or 'warn' or 'error'/],
    [{ alarmEmail: 'ops' }, /alarmEmail must be an email address/],
    [{ removalPolicy: 'snapshot' }, /removalPolicy must be 'retain' or 'destroy'/],
  ])('rejects %j with one line', (context, message) => {
    expect(() => withCertificate(context)).toThrow(message);
  });

  it('the CDK app stops with that one line and exit code 1, not a stack trace', { timeout: 60_000 }, async () => {
    const failure = await promisify(execFile)('npx', ['tsx', 'infra/bin/app.ts'], { env: { ...process.env, CDK_CONTEXT_JSON: '{"hostedZoneId":"Z0123456789ABC"}' } }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    const lines = failure!.stderr.split('\n').filter((line) => line && !line.startsWith('npm warn'));
    expect(lines).toEqual([expect.stringMatching(/^context hostedZoneId needs domainName too \(the name to certify in that zone\): pass -c certificateArn=/)]);
  });
});
