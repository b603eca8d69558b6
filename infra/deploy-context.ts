/**
 * The stack's settings, read once from CDK context (`-c key=value` on the command line, or
 * cdk.json). Each mistake stops synthesis with one line saying what to pass instead.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import { readMutualTlsContext, type MutualTlsContext } from './mutual-tls-context';

/** Where the TLS certificate of the load balancer's listeners comes from. */
export type CertificateSource =
  | { readonly kind: 'arn'; readonly certificateArn: string; readonly domainName?: string }
  | { readonly kind: 'dns-validated'; readonly domainName: string; readonly hostedZoneId: string }
  /** Neither: the stack's own CA signs a certificate for the load balancer's DNS name (infra/constructs/stack-certificate.ts). */
  | { readonly kind: 'stack'; readonly domainName?: undefined };

export interface DeployContext {
  readonly certificate: CertificateSource;
  /** Also listen for plain (unencrypted) MQTT on TCP 1883. */
  readonly plainMqtt: boolean;
  readonly removalPolicy: RemovalPolicy;
  readonly minListenerTasks: number;
  readonly maxListenerTasks: number;
  readonly natGateways: number;
  readonly logRetention: RetentionDays;
  readonly logLevel: 'info' | 'warn' | 'error';
  readonly alarmEmail?: string;
  /** Devices present certificates from the operator's CA (infra/mutual-tls-context.ts); the NLB passes 8883 through. */
  readonly mutualTls?: MutualTlsContext;
}

/** A context value that is missing or wrong: the message says what to pass instead. */
export class DeployContextError extends Error {
  override readonly name = 'DeployContextError';
}

/** Runs `build`; a context mistake ends the process with its one line rather than a stack trace. */
export function exitOnContextError<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (!(error instanceof DeployContextError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

const CERTIFICATE_HELP =
  'pass -c certificateArn=arn:aws:acm:<region>:<account>:certificate/<id> (an ACM certificate in the deployment region), ' +
  'or -c domainName=mqtt.example.com -c hostedZoneId=Z0123456789ABC to create one validated through that Route 53 hosted zone, ' +
  "or neither for a certificate from the stack's own CA";

export function readDeployContext(node: Node): DeployContext {
  const get = (key: string): unknown => node.tryGetContext(key);
  const minListenerTasks = integer(get('minListenerTasks'), 'minListenerTasks', 1, 1, 100);
  return {
    certificate: certificateSource(get),
    plainMqtt: flag(get('plainMqtt'), 'plainMqtt'),
    removalPolicy: oneOf(get('removalPolicy') ?? 'retain', 'removalPolicy', {
      retain: RemovalPolicy.RETAIN,
      destroy: RemovalPolicy.DESTROY,
    }),
    minListenerTasks,
    maxListenerTasks: integer(get('maxListenerTasks'), 'maxListenerTasks', Math.max(4, minListenerTasks), minListenerTasks, 100),
    natGateways: integer(get('natGateways'), 'natGateways', 1, 1, 2),
    logRetention: logRetention(get('logRetentionDays')),
    logLevel: oneOf(get('logLevel') ?? 'info', 'logLevel', { info: 'info', warn: 'warn', error: 'error' } as const),
    ...optionalString(get('alarmEmail'), 'alarmEmail'),
    ...optionalMutualTls(node),
  };
}

function certificateSource(get: (key: string) => unknown): CertificateSource {
  const certificateArn = get('certificateArn');
  const domainName = get('domainName');
  const hostedZoneId = get('hostedZoneId');
  if (typeof certificateArn === 'string' && certificateArn !== '') {
    if (!/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[\w-]+$/.test(certificateArn)) {
      throw new DeployContextError(`context certificateArn is not an ACM certificate ARN (${certificateArn}): ${CERTIFICATE_HELP}`);
    }
    return { kind: 'arn', certificateArn, ...(typeof domainName === 'string' && domainName ? { domainName } : {}) };
  }
  if (typeof domainName === 'string' && domainName !== '') {
    if (typeof hostedZoneId !== 'string' || hostedZoneId === '') {
      throw new DeployContextError(`context domainName needs hostedZoneId too (the Route 53 zone that validates the certificate): ${CERTIFICATE_HELP}`);
    }
    return { kind: 'dns-validated', domainName, hostedZoneId };
  }
  if (typeof hostedZoneId === 'string' && hostedZoneId !== '') {
    throw new DeployContextError(`context hostedZoneId needs domainName too (the name to certify in that zone): ${CERTIFICATE_HELP}`);
  }
  return { kind: 'stack' };
}

function optionalMutualTls(node: Node): { mutualTls?: MutualTlsContext } {
  const mutualTls = readMutualTlsContext(node);
  return mutualTls ? { mutualTls } : {};
}

function flag(value: unknown, key: string): boolean {
  if (value === undefined || value === false || value === 'false') return false;
  if (value === true || value === 'true') return true;
  throw new DeployContextError(`context ${key} must be true or false, got ${JSON.stringify(value)}`);
}

function integer(value: unknown, key: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new DeployContextError(`context ${key} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function oneOf<T>(value: unknown, key: string, choices: Record<string, T>): T {
  if (typeof value === 'string' && Object.hasOwn(choices, value)) return choices[value]!;
  const names = Object.keys(choices).map((c) => `'${c}'`);
  throw new DeployContextError(`context ${key} must be ${names.join(' or ')}, got ${JSON.stringify(value)}`);
}

function logRetention(value: unknown): RetentionDays {
  const days = value === undefined ? 30 : Number(value);
  const allowed = Object.values(RetentionDays).filter((d): d is RetentionDays => typeof d === 'number' && d > 0);
  if (!allowed.includes(days)) {
    throw new DeployContextError(`context logRetentionDays must be one of CloudWatch's retention periods (${allowed.join(', ')}), got ${JSON.stringify(value)}`);
  }
  return days;
}

function optionalString(value: unknown, key: string): { alarmEmail?: string } {
  if (value === undefined || value === '') return {};
  if (typeof value !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(value)) {
    throw new DeployContextError(`context ${key} must be an email address, got ${JSON.stringify(value)}`);
  }
  return { [key]: value };
}
