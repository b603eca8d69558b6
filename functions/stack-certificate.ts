/**
 * The load balancer's TLS certificate when the deploy names no domain and no ACM certificate
 * (infra/constructs/stack-certificate.ts). One handler (functions/tls/certificate-handler.ts),
 * two callers:
 *
 * - CloudFormation, through aws-cdk-lib's custom resource Provider. Create: the stack's CA (made
 *   once, kept in the Secrets Manager secret CA_SECRET_ARN), a server certificate for the
 *   resource's `DnsName`, imported into ACM; the ARN is the physical id, and the CA's certificate
 *   an attribute. Update (the load balancer's name changed): a new server certificate, re-imported
 *   into the same ARN. Delete: the ACM certificate.
 * - EventBridge, daily, with `{ renew: { certificateArn, dnsName } }`: when the certificate has
 *   fewer than RENEW_BEFORE_DAYS (tls/certificates.ts) left, a new one is re-imported into the
 *   same ARN, which the load balancer's listeners keep using.
 */
import { ACMClient } from '@aws-sdk/client-acm';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createJsonLogger, type LogLevel } from '../shared/util/logger';
import { createCertificateHandler } from './tls/certificate-handler';

export const handler = createCertificateHandler({
  acm: new ACMClient({}),
  secrets: new SecretsManagerClient({}),
  caSecretArn: process.env.CA_SECRET_ARN ?? '',
  log: createJsonLogger((process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info'),
});
