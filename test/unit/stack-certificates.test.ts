/** The certificates a deploy without a domain makes for itself (functions/tls/certificates.ts), checked with Node's own X.509 and TLS. */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { CA_VALIDITY_DAYS, createCertificateAuthority, issueServerCertificate, RENEW_BEFORE_DAYS, renewalDue, SERVER_VALIDITY_DAYS } from '../../functions/tls/certificates';

const DNS_NAME = 'ServerlessMqtt-DeviceL-0123456789AB-0123456789abcdef.elb.ap-southeast-2.amazonaws.com';
const DAY = 24 * 60 * 60 * 1000;

describe('stack certificates', async () => {
  const now = new Date('2026-12-04T18:00:00Z');
  const ca = await createCertificateAuthority('serverless-mqtt test CA', now);
  const server = await issueServerCertificate(ca, DNS_NAME, now);
  const caCertificate = new X509Certificate(ca.certificate);
  const serverCertificate = new X509Certificate(server.certificate);

  it('the CA is a self-signed CA certificate that holds its key', () => {
    expect(caCertificate.ca).toBe(true);
    expect(caCertificate.verify(caCertificate.publicKey)).toBe(true);
    expect(caCertificate.checkPrivateKey(createPrivateKey(ca.privateKey))).toBe(true);
    expect(caCertificate.subject).toBe('CN=serverless-mqtt test CA');
    expect(new Date(caCertificate.validTo).getTime() - now.getTime()).toBeGreaterThan((CA_VALIDITY_DAYS - 1) * DAY);
  });

  it("the server certificate names the load balancer's DNS name, is signed by the CA and holds its key", () => {
    expect(serverCertificate.ca).toBe(false);
    expect(serverCertificate.subjectAltName).toBe(`DNS:${DNS_NAME}`);
    expect(serverCertificate.checkHost(DNS_NAME)).toBe(DNS_NAME);
    expect(serverCertificate.checkHost('other.example.com')).toBeUndefined();
    expect(serverCertificate.checkIssued(caCertificate)).toBe(true);
    expect(serverCertificate.verify(caCertificate.publicKey)).toBe(true);
    expect(serverCertificate.checkPrivateKey(createPrivateKey(server.privateKey))).toBe(true);
    expect(serverCertificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  });

  it('in the PEM forms ACM imports: an unencrypted PKCS #1 key, the CA as the chain', () => {
    expect(server.privateKey).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(server.chain).toBe(ca.certificate);
    expect(ca.certificate).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
  });

  it('valid from a little before now for a year', () => {
    expect(new Date(serverCertificate.validFrom).getTime()).toBeLessThan(now.getTime());
    expect(server.notAfter.getTime() - now.getTime()).toBeGreaterThan((SERVER_VALIDITY_DAYS - 1) * DAY);
    expect(new Date(serverCertificate.validTo).getTime()).toBe(Math.floor(server.notAfter.getTime() / 1000) * 1000);
  });

  it('never outlives its CA, and refuses when the CA is about to expire', async () => {
    const late = new Date(now.getTime() + (CA_VALIDITY_DAYS - 100) * DAY);
    const lastOne = await issueServerCertificate(ca, DNS_NAME, late);
    expect(lastOne.notAfter.getTime()).toBeLessThanOrEqual(new Date(caCertificate.validTo).getTime());
    await expect(issueServerCertificate(ca, DNS_NAME, new Date(now.getTime() + CA_VALIDITY_DAYS * DAY))).rejects.toThrow(/CA expires/);
  });

  it('a TLS client that trusts only the CA (as mosquitto_pub --cafile) accepts the name and refuses another', async () => {
    const tlsServer = createServer({ cert: server.certificate + server.chain, key: server.privateKey }, (socket) => socket.end());
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    const { port } = tlsServer.address() as AddressInfo;
    const handshake = (servername: string) =>
      new Promise<void>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, servername, ca: ca.certificate }, () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      });
    try {
      await handshake(DNS_NAME);
      await expect(handshake('mqtt.example.com')).rejects.toThrow(/does not match certificate's altnames/);
    } finally {
      tlsServer.close();
    }
  });
});

describe('renewal', () => {
  const now = new Date('2026-12-04T18:00:00Z');
  it(`re-issues when fewer than ${RENEW_BEFORE_DAYS} days are left, or when ACM gives no expiry`, () => {
    expect(renewalDue(new Date(now.getTime() + 200 * DAY), now)).toBe(false);
    expect(renewalDue(new Date(now.getTime() + (RENEW_BEFORE_DAYS + 1) * DAY), now)).toBe(false);
    expect(renewalDue(new Date(now.getTime() + (RENEW_BEFORE_DAYS - 1) * DAY), now)).toBe(true);
    expect(renewalDue(new Date(now.getTime() - DAY), now)).toBe(true);
    expect(renewalDue(undefined, now)).toBe(true);
  });
});
