/**
 * Device certificates for the mutual TLS tests: a CA as the stack makes its own
 * (functions/tls/certificates.ts), client certificates it signs (ECDSA P-256 keys, PKCS #8 PEM,
 * as MQTT.js and mosquitto_pub take them), and a CRL revoking some of them.
 */
import { webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509Certificate,
  X509CertificateGenerator,
  X509CrlGenerator,
} from '@peculiar/x509';
import { createCertificateAuthority, derOf, pem, pemText, serialNumber, type CertificateAuthority } from '../../functions/tls/certificates';

export { createCertificateAuthority, type CertificateAuthority };

const crypto = webcrypto as unknown as typeof globalThis.crypto;
const CA_SIGNING = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const DEVICE_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const HOUR = 60 * 60 * 1000;

export interface DeviceCertificate {
  /** PEM. */
  readonly cert: string;
  /** PKCS #8 PEM. */
  readonly key: string;
  /** Hexadecimal, as a CRL names it. */
  readonly serialNumber: string;
}

/** A client certificate signed by `ca`, with subject CN `commonName` and, if given, a DNS subject alternative name. */
export async function issueDeviceCertificate(ca: CertificateAuthority, commonName: string, dnsName?: string): Promise<DeviceCertificate> {
  const caCertificate = new X509Certificate(ca.certificate);
  const caKey = await crypto.subtle.importKey('pkcs8', derOf(ca.privateKey), { ...CA_SIGNING }, false, ['sign']);
  const keys = await crypto.subtle.generateKey(DEVICE_KEY, true, ['sign', 'verify']);
  const serial = serialNumber();
  const certificate = await X509CertificateGenerator.create(
    {
      serialNumber: serial,
      subject: [{ CN: [commonName] }],
      issuer: caCertificate.subject,
      notBefore: new Date(Date.now() - HOUR),
      notAfter: new Date(Date.now() + 24 * HOUR),
      signingAlgorithm: CA_SIGNING,
      publicKey: keys.publicKey,
      signingKey: caKey,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.clientAuth]),
        ...(dnsName ? [new SubjectAlternativeNameExtension([{ type: 'dns', value: dnsName }])] : []),
        await AuthorityKeyIdentifierExtension.create(caCertificate, false, crypto),
      ],
    },
    crypto,
  );
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { cert: pemText(certificate), key: pem('PRIVATE KEY', pkcs8), serialNumber: serial };
}

/** A CRL from `ca`, valid for a day, revoking `revoked`. */
export async function revocationList(ca: CertificateAuthority, revoked: readonly DeviceCertificate[]): Promise<string> {
  const caCertificate = new X509Certificate(ca.certificate);
  const caKey = await crypto.subtle.importKey('pkcs8', derOf(ca.privateKey), { ...CA_SIGNING }, false, ['sign']);
  const crl = await X509CrlGenerator.create(
    {
      issuer: caCertificate.subject,
      thisUpdate: new Date(Date.now() - HOUR),
      nextUpdate: new Date(Date.now() + 24 * HOUR),
      signingAlgorithm: CA_SIGNING,
      signingKey: caKey,
      entries: revoked.map((device) => ({ serialNumber: device.serialNumber, revocationDate: new Date(Date.now() - HOUR) })),
      extensions: [await AuthorityKeyIdentifierExtension.create(caCertificate, false, crypto)],
    },
    crypto,
  );
  // OpenSSL reads a CRL only under the label X509 CRL.
  return pem('X509 CRL', Buffer.from(crl.rawData));
}

/** PEM files in a new temporary folder, for command-line clients; returns their paths by name. */
export function writePemFiles(files: Readonly<Record<string, string>>): Record<string, string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mqtt-device-certs-'));
  return Object.fromEntries(
    Object.entries(files).map(([name, text]) => {
      const file = path.join(dir, `${name}.pem`);
      writeFileSync(file, text);
      return [name, file];
    }),
  );
}
