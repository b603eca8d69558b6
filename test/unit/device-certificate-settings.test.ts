/**
 * Device certificates: MQTT_TLS_CLIENT_CA, MQTT_TLS_CRL and MQTT_TLS_IDENTITY as the listener
 * and `npm start` read them (a mistake says what to set), and which field of a verified
 * certificate becomes the user name.
 */
import type tls from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { tlsSettingsFromEnv } from '../../functions/listener/tls-settings';
import { certificateIdentity } from '../../shared/listener/client-certificate';
import { createCertificateAuthority, issueDeviceCertificate, revocationList, writePemFiles, type CertificateAuthority } from '../support/device-certificates';

let ca: CertificateAuthority;
let crl: string;
beforeAll(async () => {
  ca = await createCertificateAuthority('device CA');
  crl = await revocationList(ca, [await issueDeviceCertificate(ca, 'gone')]);
});

describe('tlsSettingsFromEnv', () => {
  it('requires no device certificates unless MQTT_TLS_CLIENT_CA is set', () => {
    expect(tlsSettingsFromEnv({})).toEqual({});
  });

  it('takes the CA and the CRL as PEM text or as PEM files; the identity is the CN unless MQTT_TLS_IDENTITY says otherwise', () => {
    const files = writePemFiles({ ca: ca.certificate, crl });
    expect(tlsSettingsFromEnv({ MQTT_TLS_CLIENT_CA: files.ca, MQTT_TLS_CRL: files.crl })).toEqual({ clientCertificates: { ca: ca.certificate, crl, identity: 'cn' } });
    expect(tlsSettingsFromEnv({ MQTT_TLS_CLIENT_CA: ca.certificate, MQTT_TLS_IDENTITY: 'san-dns' })).toEqual({ clientCertificates: { ca: ca.certificate, identity: 'san-dns' } });
  });

  it.each([
    [{ MQTT_TLS_CRL: 'crl.pem' }, 'MQTT_TLS_CRL needs MQTT_TLS_CLIENT_CA'],
    [{ MQTT_TLS_IDENTITY: 'cn' }, 'MQTT_TLS_IDENTITY needs MQTT_TLS_CLIENT_CA'],
    [{ MQTT_TLS_CLIENT_CA: '-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n' }, 'MQTT_TLS_CLIENT_CA must be a PEM CA certificate'],
    [{ MQTT_TLS_CLIENT_CA: '/nonexistent/ca.pem' }, 'cannot read MQTT_TLS_CLIENT_CA /nonexistent/ca.pem: ENOENT'],
    [{ MQTT_TLS_CERT: '/nonexistent/cert.pem' }, 'set both MQTT_TLS_CERT and MQTT_TLS_KEY'],
  ])('%o is refused with one line saying what to set', (env, message) => {
    expect(() => tlsSettingsFromEnv(env)).toThrow(message);
  });

  it('refuses an identity field it does not know, and a CRL that is not one', () => {
    expect(() => tlsSettingsFromEnv({ MQTT_TLS_CLIENT_CA: ca.certificate, MQTT_TLS_IDENTITY: 'serial' })).toThrow(
      'MQTT_TLS_IDENTITY must be cn, san-dns, san-email, got "serial"',
    );
    expect(() => tlsSettingsFromEnv({ MQTT_TLS_CLIENT_CA: ca.certificate, MQTT_TLS_CRL: ca.certificate })).toThrow('MQTT_TLS_CRL must be PEM certificate revocation lists');
  });
});

describe('certificateIdentity', () => {
  const socket = (authorized: boolean, peer: Partial<tls.PeerCertificate>): tls.TLSSocket =>
    ({ authorized, getPeerCertificate: () => peer }) as unknown as tls.TLSSocket;
  const peer = { subject: { CN: 'sensor-1' }, subjectaltname: 'IP Address:10.0.0.1, DNS:sensor-1.devices.example, email:ops@example.com' } as unknown as tls.PeerCertificate;

  it('is the subject CN, or the first DNS or email subject alternative name', () => {
    expect(certificateIdentity(socket(true, peer), 'cn')).toBe('sensor-1');
    expect(certificateIdentity(socket(true, peer), 'san-dns')).toBe('sensor-1.devices.example');
    expect(certificateIdentity(socket(true, peer), 'san-email')).toBe('ops@example.com');
  });

  it('is nothing for a certificate the handshake did not verify, a missing field, or a subject with two CNs', () => {
    expect(certificateIdentity(socket(false, peer), 'cn')).toBeUndefined();
    expect(certificateIdentity(socket(true, { subject: peer.subject } as tls.PeerCertificate), 'san-dns')).toBeUndefined();
    expect(certificateIdentity(socket(true, { subject: { CN: ['a', 'b'] } } as unknown as tls.PeerCertificate), 'cn')).toBeUndefined();
  });
});
