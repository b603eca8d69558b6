/**
 * The stack's own certificate authority and the load balancer's server certificate, for a deploy
 * with neither a domain nor an ACM certificate (infra/constructs/stack-certificate.ts). X.509 by
 * @peculiar/x509 on Node's WebCrypto; no network. Keys are RSA 2048, which every ACM-integrated
 * load balancer takes, and PEM-encoded as ACM's ImportCertificate wants them (the server's key as
 * PKCS #1, unencrypted).
 */
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';

const DAY = 24 * 60 * 60 * 1000;
/** The CA outlives many server certificates: devices pin it once. */
export const CA_VALIDITY_DAYS = 3650;
export const SERVER_VALIDITY_DAYS = 365;
/** Renewal runs daily: a month of days on which a failed run can be retried (and alarm). */
export const RENEW_BEFORE_DAYS = 30;
/** Clocks of the clients and of ACM may be a little behind the function's. */
const BACKDATE = 5 * 60 * 1000;

const crypto = webcrypto as unknown as typeof globalThis.crypto;
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;

/** A CA as kept in Secrets Manager: its certificate and its PKCS #8 private key, both PEM. */
export interface CertificateAuthority {
  readonly certificate: string;
  readonly privateKey: string;
}

export interface ServerCertificate {
  readonly certificate: string;
  /** PKCS #1 PEM. */
  readonly privateKey: string;
  /** The CA's certificate: the chain ACM serves after the server certificate. */
  readonly chain: string;
  readonly notAfter: Date;
}

export async function createCertificateAuthority(commonName: string, now = new Date()): Promise<CertificateAuthority> {
  const keys = await crypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
  const notBefore = new Date(now.getTime() - BACKDATE);
  const certificate = await X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: [{ CN: [commonName] }],
      notBefore,
      notAfter: new Date(notBefore.getTime() + CA_VALIDITY_DAYS * DAY),
      signingAlgorithm: RSA,
      keys,
      extensions: [
        // A root that signs server certificates only: no intermediate below it.
        new BasicConstraintsExtension(true, 0, true),
        new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
        await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certificate: pemText(certificate), privateKey: pem('PRIVATE KEY', Buffer.from(pkcs8)) };
}

/**
 * A server certificate for `dnsName` (its only subject alternative name, which is what clients
 * check), signed by the CA, valid SERVER_VALIDITY_DAYS or until the CA expires, whichever is
 * sooner. The subject's CN is a fixed label: a load balancer's name can pass the 64 characters a
 * CN may hold.
 */
export async function issueServerCertificate(ca: CertificateAuthority, dnsName: string, now = new Date()): Promise<ServerCertificate> {
  const caCertificate = new X509Certificate(ca.certificate);
  const caKey = await crypto.subtle.importKey('pkcs8', derOf(ca.privateKey), RSA, false, ['sign']);
  const keys = await crypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
  const notBefore = new Date(now.getTime() - BACKDATE);
  const notAfter = new Date(Math.min(notBefore.getTime() + SERVER_VALIDITY_DAYS * DAY, caCertificate.notAfter.getTime()));
  if (notAfter.getTime() - now.getTime() < DAY) {
    throw new Error(`the stack's CA expires ${caCertificate.notAfter.toISOString()}: a new CA is needed (docs/deploy.md)`);
  }
  const certificate = await X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: [{ CN: ['serverless-mqtt broker'] }],
      issuer: caCertificate.subject,
      notBefore,
      notAfter,
      signingAlgorithm: RSA,
      publicKey: keys.publicKey,
      signingKey: caKey,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth]),
        new SubjectAlternativeNameExtension([{ type: 'dns', value: dnsName }]),
        await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await AuthorityKeyIdentifierExtension.create(caCertificate, false, crypto),
      ],
    },
    crypto,
  );
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs1', format: 'pem' }).toString();
  return { certificate: pemText(certificate), privateKey, chain: ca.certificate, notAfter };
}

/** Whether a certificate that expires at `notAfter` (unknown: undefined) should be re-issued now. */
export function renewalDue(notAfter: Date | undefined, now: Date): boolean {
  return notAfter === undefined || notAfter.getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY;
}

/** A positive serial of 128 random bits, hexadecimal. */
export function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f;
  return bytes.toString('hex');
}

export function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** One PEM block with Unix line ends and a final newline, so that blocks concatenate into a chain. */
export function pemText(certificate: X509Certificate): string {
  return `${certificate.toString('pem').replace(/\r\n/g, '\n').trimEnd()}\n`;
}

export function derOf(text: string): Buffer {
  return Buffer.from(text.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}
