/**
 * The load balancer's TLS certificate when the deploy names no domain and no ACM certificate
 * (infra/constructs/stack-certificate.ts). One handler, two callers:
 *
 * - CloudFormation, through aws-cdk-lib's custom resource Provider. Create: the stack's CA (made
 *   once, kept in the Secrets Manager secret CA_SECRET_ARN), a server certificate for the
 *   resource's `DnsName`, imported into ACM; the ARN is the physical id, and the CA's certificate
 *   an attribute. Update (the load balancer's name changed): a new server certificate, re-imported
 *   into the same ARN. Delete: the ACM certificate.
 * - EventBridge, daily, with `{ renew: { certificateArn, dnsName } }`: when the certificate has
 *   fewer than RENEW_BEFORE_DAYS (tls/certificates.ts) left, a new one is re-imported into the same ARN, which the
 *   load balancer's listeners keep using.
 */
import {
  ACMClient,
  DeleteCertificateCommand,
  DescribeCertificateCommand,
  ImportCertificateCommand,
  ResourceInUseException,
  ResourceNotFoundException,
} from '@aws-sdk/client-acm';
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { createJsonLogger, type LogLevel } from '../shared/util/logger';
import { createCertificateAuthority, issueServerCertificate, renewalDue, type CertificateAuthority } from './tls/certificates';

export interface RenewEvent {
  readonly renew: { readonly certificateArn: string; readonly dnsName: string };
}

export interface CustomResourceResult {
  readonly PhysicalResourceId: string;
  readonly Data?: { readonly CertificateArn: string; readonly CaCertificate: string };
}

const caSecretArn = process.env.CA_SECRET_ARN ?? '';
const log = createJsonLogger((process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info');
const acm = new ACMClient({});
const secrets = new SecretsManagerClient({});

export async function handler(event: CloudFormationCustomResourceEvent | RenewEvent): Promise<CustomResourceResult | { renewed: boolean }> {
  if ('renew' in event) return { renewed: await renew(event.renew.certificateArn, event.renew.dnsName) };
  if (event.RequestType === 'Delete') {
    await deleteCertificate(event.PhysicalResourceId);
    return { PhysicalResourceId: event.PhysicalResourceId };
  }
  const dnsName = String(event.ResourceProperties.DnsName);
  const previousArn = event.RequestType === 'Update' ? event.PhysicalResourceId : undefined;
  const ca = await certificateAuthority();
  const certificateArn = await importServerCertificate(ca, dnsName, previousArn);
  return { PhysicalResourceId: certificateArn, Data: { CertificateArn: certificateArn, CaCertificate: ca.certificate } };
}

async function renew(certificateArn: string, dnsName: string): Promise<boolean> {
  const { Certificate } = await acm.send(new DescribeCertificateCommand({ CertificateArn: certificateArn }));
  const notAfter = Certificate?.NotAfter;
  if (!renewalDue(notAfter, new Date())) {
    log.info('TLS certificate not yet due for renewal', { certificateArn, notAfter });
    return false;
  }
  await importServerCertificate(await certificateAuthority(), dnsName, certificateArn);
  return true;
}

/** The stack's CA from its secret; made and stored the first time (the secret starts with a random placeholder). */
async function certificateAuthority(): Promise<CertificateAuthority> {
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: caSecretArn }));
  const stored = parseAuthority(SecretString);
  if (stored) return stored;
  const ca = await createCertificateAuthority(`serverless-mqtt CA ${new Date().toISOString().slice(0, 10)}`);
  await secrets.send(new PutSecretValueCommand({ SecretId: caSecretArn, SecretString: JSON.stringify(ca) }));
  log.info("made the stack's certificate authority", { caSecretArn });
  return ca;
}

function parseAuthority(text: string | undefined): CertificateAuthority | undefined {
  try {
    const value = JSON.parse(text ?? '') as Partial<CertificateAuthority>;
    return typeof value.certificate === 'string' && typeof value.privateKey === 'string' ? { certificate: value.certificate, privateKey: value.privateKey } : undefined;
  } catch {
    return undefined;
  }
}

/** Imports a new server certificate, into `certificateArn` when given (a re-import keeps the ARN the listeners use). */
async function importServerCertificate(ca: CertificateAuthority, dnsName: string, certificateArn?: string): Promise<string> {
  const server = await issueServerCertificate(ca, dnsName);
  const { CertificateArn } = await acm.send(
    new ImportCertificateCommand({
      ...(certificateArn ? { CertificateArn: certificateArn } : {}),
      Certificate: Buffer.from(server.certificate),
      PrivateKey: Buffer.from(server.privateKey),
      CertificateChain: Buffer.from(server.chain),
    }),
  );
  log.info('imported the TLS certificate', { certificateArn: CertificateArn, dnsName, notAfter: server.notAfter });
  return CertificateArn!;
}

/**
 * ACM refuses to delete a certificate for a while after the listeners that used it are gone
 * (ResourceInUseException): retried for up to four minutes, then left behind (an imported
 * certificate costs nothing) rather than failing the stack's deletion.
 */
async function deleteCertificate(certificateArn: string): Promise<void> {
  if (!certificateArn.startsWith('arn:')) return; // a Create that failed before importing
  const deadline = Date.now() + 4 * 60 * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      await acm.send(new DeleteCertificateCommand({ CertificateArn: certificateArn }));
      return;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return;
      if (!(error instanceof ResourceInUseException)) throw error;
      if (Date.now() > deadline) {
        log.warn('TLS certificate still in use; left in ACM', { certificateArn });
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 2_000 * attempt)));
    }
  }
}
