/**
 * A self-signed certificate for `npm start --tls`: made at start (selfsigned, no network), valid
 * for localhost and 127.0.0.1 for a day, and its own CA, so a client pins it with `--cafile`.
 * An existing certificate and key can be given instead (MQTT_TLS_CERT / MQTT_TLS_KEY).
 */
import selfsigned from 'selfsigned';

export interface TlsCertificate {
  /** PEM; also the CA certificate a client trusts. */
  readonly cert: string;
  readonly key: string;
}

export async function generateSelfSignedCertificate(host: string): Promise<TlsCertificate> {
  const ipHost = /^[\d.]+$|:/.test(host);
  const altNames = [
    { type: 2 as const, value: 'localhost' },
    { type: 7 as const, ip: '127.0.0.1' },
    ...(host !== 'localhost' && host !== '127.0.0.1' ? [ipHost ? { type: 7 as const, ip: host } : { type: 2 as const, value: host }] : []),
  ];
  const notBeforeDate = new Date(Date.now() - 60_000);
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'serverless-mqtt local broker' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 24 * 60 * 60 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
