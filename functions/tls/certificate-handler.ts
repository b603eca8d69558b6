/**
 * What functions/stack-certificate.ts does with a custom resource event or a renewal, over the
 * ACM and Secrets Manager clients it is given (built once in the entry point).
 */
import {
  DeleteCertificateCommand,
  DescribeCertificateCommand,
  ImportCertificateCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  type ACMClient,
} from '@aws-sdk/client-acm';
import { GetSecretValueCommand, PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import type { Logger } from '../../shared/util/logger';
import { createCertificateAuthority, issueServerCertificate, renewalDue, type CertificateAuthority } from './certificates';

export interface RenewEvent {
  readonly renew: { readonly certificateArn: string; readonly dnsName: string };
}

export interface CustomResourceResult {
  readonly PhysicalResourceId: string;
  readonly Data?: { readonly CertificateArn: string; readonly CaCertificate: string };
}

export interface CertificateHandlerDeps {
  readonly acm: Pick<ACMClient, 'send'>;
  readonly secrets: Pick<SecretsManagerClient, 'send'>;
  /** The secret that holds the stack's CA (CA_SECRET_ARN). */
  readonly caSecretArn: string;
  readonly log: Logger;
  readonly now?: () => Date;
  /** How long a delete retries while ACM says the certificate is in use (four minutes). */
  readonly deleteRetryMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export function createCertificateHandler(deps: CertificateHandlerDeps) {
  const { acm, secrets, caSecretArn, log } = deps;
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  /** The stack's CA from its secret; made and stored the first time (the secret starts with a random placeholder). */
  async function certificateAuthority(): Promise<CertificateAuthority> {
    const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: caSecretArn }));
    const stored = parseAuthority(SecretString);
    if (stored) return stored;
    const ca = await createCertificateAuthority(`serverless-mqtt CA ${now().toISOString().slice(0, 10)}`, now());
    await secrets.send(new PutSecretValueCommand({ SecretId: caSecretArn, SecretString: JSON.stringify(ca) }));
    log.info("made the stack's certificate authority", { caSecretArn });
    return ca;
  }

  /** Imports a new server certificate, into `certificateArn` when given (a re-import keeps the ARN the listeners use). */
  async function importServerCertificate(ca: CertificateAuthority, dnsName: string, certificateArn?: string): Promise<string> {
    const server = await issueServerCertificate(ca, dnsName, now());
    const { CertificateArn } = await acm.send(
      new ImportCertificateCommand({
        ...(certificateArn ? { CertificateArn: certificateArn } : {}),
        Certificate: Buffer.from(server.certificate),
        PrivateKey: Buffer.from(server.privateKey),
        CertificateChain: Buffer.from(server.chain),
      }),
    );
    if (!CertificateArn) throw new Error('ACM returned no certificate ARN');
    log.info('imported the TLS certificate', { certificateArn: CertificateArn, dnsName, notAfter: server.notAfter });
    return CertificateArn;
  }

  async function renew(certificateArn: string, dnsName: string): Promise<boolean> {
    const { Certificate } = await acm.send(new DescribeCertificateCommand({ CertificateArn: certificateArn }));
    const notAfter = Certificate?.NotAfter;
    if (!renewalDue(notAfter, now())) {
      log.info('TLS certificate not yet due for renewal', { certificateArn, notAfter });
      return false;
    }
    await importServerCertificate(await certificateAuthority(), dnsName, certificateArn);
    return true;
  }

  /**
   * ACM refuses to delete a certificate for a while after the listeners that used it are gone
   * (ResourceInUseException): retried, then left behind (an imported certificate costs nothing)
   * rather than failing the stack's deletion.
   */
  async function deleteCertificate(certificateArn: string): Promise<void> {
    if (!certificateArn.startsWith('arn:')) return; // a Create that failed before importing
    const deadline = Date.now() + (deps.deleteRetryMs ?? 4 * 60 * 1000);
    for (let attempt = 1; ; attempt++) {
      try {
        await acm.send(new DeleteCertificateCommand({ CertificateArn: certificateArn }));
        return;
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return;
        if (!(error instanceof ResourceInUseException)) throw error;
        if (Date.now() >= deadline) {
          log.warn('TLS certificate still in use; left in ACM', { certificateArn });
          return;
        }
        await sleep(Math.min(30_000, 2_000 * attempt));
      }
    }
  }

  return async function handler(event: CloudFormationCustomResourceEvent | RenewEvent): Promise<CustomResourceResult | { renewed: boolean }> {
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
  };
}

function parseAuthority(text: string | undefined): CertificateAuthority | undefined {
  try {
    const value = JSON.parse(text ?? '') as Partial<CertificateAuthority>;
    return typeof value.certificate === 'string' && typeof value.privateKey === 'string' ? { certificate: value.certificate, privateKey: value.privateKey } : undefined;
  } catch {
    return undefined;
  }
}
