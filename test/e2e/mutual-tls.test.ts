/**
 * Device certificates (mutual TLS) on the listener's TLS port, as `npm start --tls` with
 * MQTT_TLS_CLIENT_CA serves it and the listener task does behind the NLB's TCP passthrough: a
 * device with a certificate from the configured CA connects and its CN is its user name (`%u`
 * in ACL rules), whatever its CONNECT says; no certificate, one from another CA, or a revoked
 * one is refused in the handshake. With MQTT.js and with Debian's mosquitto_pub.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { MqttClient, type IClientOptions } from 'mqtt';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Harness, HarnessOptions } from '../../local/harness';
import { parseAcl } from '../../shared/security/acl';
import { collect, connectClient, endAll, eventually, whenConnected } from '../support/clients';
import {
  createCertificateAuthority,
  issueDeviceCertificate,
  revocationList,
  writePemFiles,
  type CertificateAuthority,
  type DeviceCertificate,
} from '../support/device-certificates';
import { useHarness } from '../support/harness';
import { proxyHeader } from '../support/proxy-header';

interface Pki {
  readonly ca: CertificateAuthority;
  readonly sensor: DeviceCertificate;
  readonly revoked: DeviceCertificate;
  readonly stranger: DeviceCertificate;
  readonly crl: string;
}

let pki: Pki;

beforeAll(async () => {
  const ca = await createCertificateAuthority('device CA');
  const otherCa = await createCertificateAuthority('some other CA');
  const [sensor, revoked, stranger] = await Promise.all([
    issueDeviceCertificate(ca, 'sensor-1'),
    issueDeviceCertificate(ca, 'sensor-2'),
    issueDeviceCertificate(otherCa, 'sensor-1'),
  ]);
  pki = { ca, sensor, revoked, stranger, crl: await revocationList(ca, [revoked]) };
});

/** A harness whose TLS port requires device certificates from the test CA, the CRL revoking sensor-2, under `readwrite devices/%u/#`. */
function useMutualTlsHarness(options: HarnessOptions = {}): () => Harness {
  return useHarness(() => ({
    security: { allowAnonymous: false, acl: parseAcl('readwrite devices/%u/#') },
    tls: { port: 0, clientCertificates: { ca: pki.ca.certificate, crl: pki.crl, identity: 'cn' } },
    ...options,
  }));
}

const mqttsOptions = (harness: Harness, device?: DeviceCertificate): IClientOptions => ({
  protocolVersion: 5,
  ca: harness.tlsCertificate!,
  rejectUnauthorized: true,
  ...(device ? { cert: device.cert, key: device.key } : {}),
});

/** The TLS client's error when the broker refuses its handshake. */
async function refusedHandshake(harness: Harness, device?: DeviceCertificate): Promise<string> {
  const outcome = await connectClient(harness.mqttsUrl!, mqttsOptions(harness, device)).then(
    async (client) => {
      await endAll(client);
      return 'connected';
    },
    (error: Error) => error.message,
  );
  expect(outcome).not.toBe('connected');
  return outcome;
}

function mosquittoPub(harness: Harness, files: Record<string, string>, device: string | undefined, topic: string): Promise<number> {
  const args = ['-h', 'localhost', '-p', String(harness.mqttsPort), '--cafile', files.server!, '-V', 'mqttv5', '-q', '1', '-t', topic, '-m', 'from mosquitto'];
  if (device) args.push('--cert', files[`${device}-cert`]!, '--key', files[`${device}-key`]!);
  return new Promise((resolve) => execFile('mosquitto_pub', args, { timeout: 20_000 }, (error) => resolve(error ? Number(error.code ?? -1) || -1 : 0)));
}

describe('device certificates on the TLS port (npm start --tls with MQTT_TLS_CLIENT_CA)', () => {
  const harness = useMutualTlsHarness();

  it("MQTT.js with a certificate from the CA connects as its CN: %u is sensor-1, not the CONNECT's user name", async () => {
    // The CONNECT's user name and password are not used: the certificate is the authentication.
    const options = { ...mqttsOptions(harness(), pki.sensor), username: 'sensor-9', password: 'not checked' };
    const sub = await connectClient(harness().mqttsUrl!, { ...options, clientId: 'sensor-1-sub' });
    const pub = await connectClient(harness().mqttsUrl!, { ...options, clientId: 'sensor-1-pub' });
    const got = collect(sub);
    await sub.subscribeAsync('devices/sensor-1/#', { qos: 1 });
    await expect(sub.subscribeAsync('devices/sensor-9/#', { qos: 1 })).rejects.toThrow(/not authorized/i);
    await pub.publishAsync('devices/sensor-1/temp', '21.5', { qos: 1 });
    await expect(pub.publishAsync('devices/sensor-9/temp', 'not mine', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    await eventually(() => got.length === 1, 'the message on its own topic');
    expect(got).toMatchObject([{ topic: 'devices/sensor-1/temp', payload: '21.5' }]);
    await endAll(sub, pub);
  });

  it('MQTT.js without a certificate, with one from another CA, or with one the CRL revokes is refused in the handshake', async () => {
    // TLS 1.3: the client may finish its side of the handshake before the broker's alert arrives,
    // so MQTT.js sees either the alert or the connection closing before any CONNACK.
    const refusal = /certificate|alert|unknown ca|revoked|closed before CONNACK/i;
    expect(await refusedHandshake(harness())).toMatch(refusal);
    expect(await refusedHandshake(harness(), pki.stranger)).toMatch(refusal);
    expect(await refusedHandshake(harness(), pki.revoked)).toMatch(refusal);
  });

  it('the plain MQTT port takes no identity from a user name alone', async () => {
    const error = await connectClient(harness().mqttUrl, { protocolVersion: 5, username: 'sensor-1' }).catch((e: Error & { code?: number }) => e);
    expect(error).toMatchObject({ code: 0x86 });
  });

  it('mosquitto_pub --cafile --cert --key publishes as its CN; without a certificate, from another CA or revoked it cannot connect', async () => {
    const files = writePemFiles({
      server: harness().tlsCertificate!,
      'sensor-cert': pki.sensor.cert,
      'sensor-key': pki.sensor.key,
      'stranger-cert': pki.stranger.cert,
      'stranger-key': pki.stranger.key,
      'revoked-cert': pki.revoked.cert,
      'revoked-key': pki.revoked.key,
    });
    const sub = await connectClient(harness().mqttsUrl!, { ...mqttsOptions(harness(), pki.sensor), clientId: 'sensor-1-listens' });
    const got = collect(sub);
    await sub.subscribeAsync('devices/sensor-1/#', { qos: 1 });
    expect(await mosquittoPub(harness(), files, 'sensor', 'devices/sensor-1/mosquitto')).toBe(0);
    await eventually(() => got.length === 1, 'the message mosquitto_pub sent');
    expect(got).toMatchObject([{ topic: 'devices/sensor-1/mosquitto', payload: 'from mosquitto' }]);
    for (const device of [undefined, 'stranger', 'revoked']) {
      expect(await mosquittoPub(harness(), files, device, 'devices/sensor-1/mosquitto'), `mosquitto_pub with ${device ?? 'no'} certificate`).not.toBe(0);
    }
    expect(got).toHaveLength(1);
    await endAll(sub);
  });
});

describe('device certificates behind a PROXY protocol v2 header (the NLB passing TLS through)', () => {
  const harness = useMutualTlsHarness({ listener: { proxyProtocol: true } });

  /** MQTT.js over TLS on a socket that first sends the NLB's header. */
  const behindProxy = (device: DeviceCertificate): Promise<MqttClient> =>
    whenConnected(
      new MqttClient(() => {
        const socket = net.connect(harness().mqttsPort!, '127.0.0.1');
        socket.write(proxyHeader('203.0.113.7'));
        return tls.connect({ socket, servername: 'localhost', ca: harness().tlsCertificate!, cert: device.cert, key: device.key });
      }, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 }),
    );

  it('reads the header, then verifies the certificate: sensor-1 publishes on its own topics only', async () => {
    const client = await behindProxy(pki.sensor);
    const got = collect(client);
    await client.subscribeAsync('devices/sensor-1/#', { qos: 1 });
    await client.publishAsync('devices/sensor-1/hello', 'through the load balancer', { qos: 1 });
    await expect(client.publishAsync('devices/other/hello', 'no', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    await eventually(() => got.length === 1, 'its own message');
    await endAll(client);
  });

  it('a TLS handshake without the header first is refused', async () => {
    await refusedHandshake(harness(), pki.sensor);
    await eventually(() => harness().listenerStats().refused.proxyHeader > 0, 'the refusal counted');
  });
});
