/**
 * The listener's TLS port from environment variables, read once by its entry points (the
 * container, functions/listener/main.ts, and `npm start`) and checked at synthesis
 * (infra/mutual-tls-context.ts). Each PEM setting holds either the PEM text itself (as ECS puts a
 * secret in the container's environment) or the path of a PEM file (as `npm start` takes them).
 *
 *   MQTT_TLS_CERT, MQTT_TLS_KEY  the server's certificate (chain) and private key, both or neither
 *   MQTT_TLS_CLIENT_CA           require a device certificate that chains to this CA (mutual TLS)
 *   MQTT_TLS_CRL                 with it: revoked certificates are refused in the handshake
 *   MQTT_TLS_IDENTITY            with it: which field of the certificate is the user name:
 *                                cn (the subject's common name; the default), san-dns or san-email
 *                                (the first such subject alternative name)
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { CERTIFICATE_IDENTITY_FIELDS, type CertificateIdentityField, type ClientCertificateOptions } from '../../shared/listener/client-certificate';
import { ConfigurationError } from '../security-config';

type Env = Readonly<Record<string, string | undefined>>;

export interface TlsSettings {
  /** The server's certificate and key; absent: the entry point's own (npm start makes one). */
  readonly server?: { readonly cert: string; readonly key: string };
  /** Present when devices must present a certificate. */
  readonly clientCertificates?: ClientCertificateOptions;
}

export function tlsSettingsFromEnv(env: Env): TlsSettings {
  if (!env.MQTT_TLS_CERT !== !env.MQTT_TLS_KEY) {
    throw new ConfigurationError('set both MQTT_TLS_CERT and MQTT_TLS_KEY (PEM, or PEM files), or neither');
  }
  const cert = pemSetting(env, 'MQTT_TLS_CERT');
  const key = pemSetting(env, 'MQTT_TLS_KEY');
  if (cert !== undefined && key !== undefined) {
    try {
      tls.createSecureContext({ cert, key });
    } catch (error) {
      throw new ConfigurationError(`MQTT_TLS_CERT and MQTT_TLS_KEY are not a certificate and its private key: ${(error as Error).message}`);
    }
  }
  const clientCertificates = clientCertificatesFromEnv(env);
  return { ...(cert !== undefined && key !== undefined ? { server: { cert, key } } : {}), ...(clientCertificates ? { clientCertificates } : {}) };
}

function clientCertificatesFromEnv(env: Env): ClientCertificateOptions | undefined {
  const identity = env.MQTT_TLS_IDENTITY || undefined;
  if (!env.MQTT_TLS_CLIENT_CA) {
    const orphan = env.MQTT_TLS_CRL ? 'MQTT_TLS_CRL' : identity !== undefined ? 'MQTT_TLS_IDENTITY' : undefined;
    if (orphan) throw new ConfigurationError(`${orphan} needs MQTT_TLS_CLIENT_CA (the CA whose device certificates the TLS port accepts)`);
    return undefined;
  }
  const ca = pemSetting(env, 'MQTT_TLS_CLIENT_CA')!;
  const crl = pemSetting(env, 'MQTT_TLS_CRL');
  try {
    new X509Certificate(ca);
  } catch {
    throw new ConfigurationError('MQTT_TLS_CLIENT_CA must be a PEM CA certificate (or a PEM file holding one)');
  }
  if (crl !== undefined) {
    try {
      tls.createSecureContext({ ca, crl });
    } catch (error) {
      throw new ConfigurationError(`MQTT_TLS_CRL must be PEM certificate revocation lists (or a PEM file holding them): ${(error as Error).message}`);
    }
  }
  if (identity !== undefined && !CERTIFICATE_IDENTITY_FIELDS.includes(identity as CertificateIdentityField)) {
    throw new ConfigurationError(`MQTT_TLS_IDENTITY must be ${CERTIFICATE_IDENTITY_FIELDS.join(', ')}, got "${identity}"`);
  }
  return { ca, ...(crl !== undefined ? { crl } : {}), identity: (identity as CertificateIdentityField | undefined) ?? 'cn' };
}

/** PEM text as given, or the contents of the file it names. */
function pemSetting(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (value.includes('-----BEGIN ')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    throw new ConfigurationError(`cannot read ${name} ${value}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}
