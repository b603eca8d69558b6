/** The certificate function's flows (functions/tls/certificate-handler.ts) over fake ACM and Secrets Manager clients. */
import { X509Certificate } from 'node:crypto';
import {
  DeleteCertificateCommand,
  DescribeCertificateCommand,
  ImportCertificateCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  type ACMClient,
  type ImportCertificateCommandInput,
} from '@aws-sdk/client-acm';
import { GetSecretValueCommand, PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createCertificateHandler, type CustomResourceResult } from '../../functions/tls/certificate-handler';
import { RENEW_BEFORE_DAYS } from '../../functions/tls/certificates';

const DAY = 24 * 60 * 60 * 1000;
const NEW_ARN = 'arn:aws:acm:us-east-1:111111111111:certificate/11111111-2222-3333-4444-555555555555';
const DNS_NAME = 'Serverless-LoadB-ABC.elb.us-east-1.amazonaws.com';

class FakeAws {
  secret = 'a random placeholder, as CDK generates it';
  secretWrites = 0;
  imports: ImportCertificateCommandInput[] = [];
  deletes: string[] = [];
  notAfter = new Date(Date.now() + 300 * DAY);
  /** Deletes that answer ResourceInUseException before one succeeds; 'gone' answers ResourceNotFoundException. */
  inUse: number | 'gone' = 0;
  warnings: string[] = [];

  acm = {
    send: async (command: object) => {
      if (command instanceof ImportCertificateCommand) {
        this.imports.push(command.input);
        return { CertificateArn: command.input.CertificateArn ?? NEW_ARN };
      }
      if (command instanceof DescribeCertificateCommand) return { Certificate: { NotAfter: this.notAfter } };
      if (command instanceof DeleteCertificateCommand) {
        if (this.inUse === 'gone') throw new ResourceNotFoundException({ message: 'no such certificate', $metadata: {} });
        if (this.inUse > 0) {
          this.inUse--;
          throw new ResourceInUseException({ message: 'in use', $metadata: {} });
        }
        this.deletes.push(command.input.CertificateArn!);
        return {};
      }
      throw new Error(`unexpected ${command.constructor.name}`);
    },
  } as unknown as Pick<ACMClient, 'send'>;

  secrets = {
    send: async (command: object) => {
      if (command instanceof GetSecretValueCommand) return { SecretString: this.secret };
      if (command instanceof PutSecretValueCommand) {
        this.secret = command.input.SecretString!;
        this.secretWrites++;
        return {};
      }
      throw new Error(`unexpected ${command.constructor.name}`);
    },
  } as unknown as Pick<SecretsManagerClient, 'send'>;

  handler(deleteRetryMs = 60_000) {
    return createCertificateHandler({
      acm: this.acm,
      secrets: this.secrets,
      caSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:ca',
      log: { info: () => {}, warn: (message) => this.warnings.push(message), error: () => {} },
      deleteRetryMs,
      sleep: async () => {},
    });
  }
}

const event = (RequestType: 'Create' | 'Update' | 'Delete', extra: Record<string, unknown> = {}) =>
  ({ RequestType, ResourceProperties: { ServiceToken: 'token', DnsName: DNS_NAME }, ...extra }) as unknown as CloudFormationCustomResourceEvent;
const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes!).toString();

describe('certificate custom resource', () => {
  it('Create: makes the CA once, keeps it in the secret, imports a certificate for the DNS name with the CA as its chain', async () => {
    const aws = new FakeAws();
    const result = (await aws.handler()(event('Create'))) as CustomResourceResult;

    expect(aws.secretWrites).toBe(1);
    const ca = JSON.parse(aws.secret) as { certificate: string; privateKey: string };
    expect(result).toEqual({ PhysicalResourceId: NEW_ARN, Data: { CertificateArn: NEW_ARN, CaCertificate: ca.certificate } });
    const [imported] = aws.imports;
    expect(imported!.CertificateArn).toBeUndefined();
    expect(text(imported!.CertificateChain)).toBe(ca.certificate);
    const server = new X509Certificate(text(imported!.Certificate));
    expect(server.checkHost(DNS_NAME)).toBe(DNS_NAME);
    expect(server.verify(new X509Certificate(ca.certificate).publicKey)).toBe(true);
    expect(text(imported!.PrivateKey)).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
  });

  it('Update (a new load balancer name): the same CA, re-imported into the same ARN', async () => {
    const aws = new FakeAws();
    await aws.handler()(event('Create'));
    const ca = aws.secret;
    const result = (await aws.handler()({
      ...event('Update', { PhysicalResourceId: NEW_ARN }),
      ResourceProperties: { ServiceToken: 'token', DnsName: 'other.elb.amazonaws.com' },
    } as CloudFormationCustomResourceEvent)) as CustomResourceResult;
    expect(result.PhysicalResourceId).toBe(NEW_ARN);
    expect(aws.secret).toBe(ca);
    expect(aws.secretWrites).toBe(1);
    expect(aws.imports[1]!.CertificateArn).toBe(NEW_ARN);
    expect(new X509Certificate(text(aws.imports[1]!.Certificate)).subjectAltName).toBe('DNS:other.elb.amazonaws.com');
  });

  it('Delete: retries while ACM says the certificate is in use, then deletes it', async () => {
    const aws = new FakeAws();
    aws.inUse = 3;
    expect(await aws.handler()(event('Delete', { PhysicalResourceId: NEW_ARN }))).toEqual({ PhysicalResourceId: NEW_ARN });
    expect(aws.deletes).toEqual([NEW_ARN]);
  });

  it('Delete: a certificate already gone, one never imported, or one still in use at the deadline do not fail the stack', async () => {
    const gone = new FakeAws();
    gone.inUse = 'gone';
    await gone.handler()(event('Delete', { PhysicalResourceId: NEW_ARN }));
    const neverImported = new FakeAws();
    await neverImported.handler()(event('Delete', { PhysicalResourceId: 'request-id-of-a-failed-create' }));
    expect(neverImported.deletes).toEqual([]);
    const stuck = new FakeAws();
    stuck.inUse = 1_000_000;
    await stuck.handler(0)(event('Delete', { PhysicalResourceId: NEW_ARN }));
    expect(stuck.deletes).toEqual([]);
    expect(stuck.warnings).toEqual(['TLS certificate still in use; left in ACM']);
  });
});

describe('scheduled renewal', () => {
  const renew = { renew: { certificateArn: NEW_ARN, dnsName: DNS_NAME } };

  it(`does nothing while more than ${RENEW_BEFORE_DAYS} days are left`, async () => {
    const aws = new FakeAws();
    aws.notAfter = new Date(Date.now() + (RENEW_BEFORE_DAYS + 5) * DAY);
    expect(await aws.handler()(renew)).toEqual({ renewed: false });
    expect(aws.imports).toEqual([]);
  });

  it('then re-imports a certificate from the same CA into the same ARN', async () => {
    const aws = new FakeAws();
    await aws.handler()(event('Create'));
    const ca = aws.secret;
    aws.notAfter = new Date(Date.now() + (RENEW_BEFORE_DAYS - 5) * DAY);
    expect(await aws.handler()(renew)).toEqual({ renewed: true });
    expect(aws.secret).toBe(ca);
    expect(aws.imports[1]!.CertificateArn).toBe(NEW_ARN);
    const renewed = new X509Certificate(text(aws.imports[1]!.Certificate));
    expect(renewed.checkHost(DNS_NAME)).toBe(DNS_NAME);
    expect(renewed.checkIssued(new X509Certificate((JSON.parse(ca) as { certificate: string }).certificate))).toBe(true);
  });
});
