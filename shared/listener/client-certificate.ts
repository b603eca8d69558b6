/**
 * Device certificates (mutual TLS) on the listener's TLS port: the CA the operator trusts, an
 * optional CRL, and which field of a verified certificate names the device. The name becomes the
 * connection's user name (what ACL rules call `%u`); the listener hands it to the packet handler
 * with the connection's CONNECT, as a fact of the connection the client cannot choose.
 */
import type tls from 'node:tls';

/** Which field of the certificate is the user name: the subject's CN, or its first DNS or email subject alternative name. */
export type CertificateIdentityField = 'cn' | 'san-dns' | 'san-email';
export const CERTIFICATE_IDENTITY_FIELDS: readonly CertificateIdentityField[] = ['cn', 'san-dns', 'san-email'];

export interface ClientCertificateOptions {
  /** PEM: the CA certificate(s) a device's certificate must chain to. */
  readonly ca: string;
  /** PEM: certificate revocation lists; a certificate one lists is refused in the handshake. */
  readonly crl?: string;
  readonly identity: CertificateIdentityField;
}

/** What tls.createServer needs to require a certificate from the configured CA (and not one the CRL revokes). */
export function clientCertificateServerOptions(options: ClientCertificateOptions): tls.TlsOptions {
  return { requestCert: true, rejectUnauthorized: true, ca: options.ca, ...(options.crl ? { crl: options.crl } : {}) };
}

/**
 * The identity of a socket whose handshake verified its client's certificate; undefined when it
 * was not verified or the field is absent (the listener then closes the socket).
 */
export function certificateIdentity(socket: tls.TLSSocket, field: CertificateIdentityField): string | undefined {
  if (!socket.authorized) return undefined;
  const certificate = socket.getPeerCertificate();
  if (field === 'cn') {
    const cn = certificate.subject?.CN as string | string[] | undefined;
    // A subject with several CNs names no one device.
    return typeof cn === 'string' && cn !== '' ? cn : undefined;
  }
  const prefix = field === 'san-dns' ? 'DNS:' : 'email:';
  return subjectAltNames(certificate.subjectaltname).find((name) => name.startsWith(prefix))?.slice(prefix.length) || undefined;
}

/** Node's `subjectaltname` text: `DNS:a.example, email:x@example, IP Address:1.2.3.4` (values with commas are quoted). */
function subjectAltNames(text: string | undefined): string[] {
  if (!text) return [];
  return text.split(/, (?=[A-Za-z ]+:)/).map((entry) => entry.replace(/^([A-Za-z ]+:)"(.*)"$/, '$1$2'));
}
