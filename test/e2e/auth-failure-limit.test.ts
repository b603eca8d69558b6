/**
 * Password checks cost a scrypt hash; what keeps a guesser from buying them freely: failed checks
 * are counted per source address (the PROXY protocol header's, as the NLB sends it), and past the
 * limit that address's checks are refused before any hash (5.0 CONNACK 0x9F, 3.1.1 return code 3)
 * while other addresses, and the right user elsewhere, connect as before; the exact same wrong
 * password is refused again without hashing. Observed through the handlers' count of hashes.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReasonCode } from '../../shared/protocol/reason-codes';
import { hashPassword } from '../../shared/security/password';
import { connectThroughApiGateway, endAll } from '../support/clients';
import { useHarness } from '../support/harness';
import { clientBehindProxy } from '../support/proxy-header';

const LIMIT = 3;
const harness = useHarness({
  listener: { proxyProtocol: true },
  security: { allowAnonymous: false, authFailureRate: { count: LIMIT, perSeconds: 600 } },
});
const clients: MqttClient[] = [];
afterAll(() => endAll(...clients));

beforeAll(async () => {
  await harness().securityStore.putUser({ username: 'carol', passwordHash: await hashPassword('carol-password', { logN: 12, r: 8, p: 1 }) });
});

let counter = 0;
/** The CONNACK code a CONNECT from `source` gets: 0 when accepted. */
async function connackFrom(source: string, password: string, options: IClientOptions = {}): Promise<number> {
  const opts: IClientOptions = { reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 5, clientId: `limited-${process.pid}-${++counter}`, username: 'carol', password, ...options };
  const client = clientBehindProxy(harness().mqttPort, source, opts);
  clients.push(client);
  return new Promise<number>((resolve, reject) => {
    client.once('connect', () => resolve(0));
    client.once('error', (error) => ((error as { code?: number }).code !== undefined ? resolve((error as { code: number }).code) : reject(error)));
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** The code, and how many hashes the handlers made for it. */
async function attempt(source: string, password: string, options: IClientOptions = {}): Promise<{ code: number; hashes: number }> {
  const before = harness().passwordHashes();
  const code = await connackFrom(source, password, options);
  return { code, hashes: harness().passwordHashes() - before };
}

describe('failed authentications per source address', () => {
  it(`after ${LIMIT} failures from one address, its next attempts are refused without a hash (0x9F / 3.1.1: 3); another address is unaffected`, async () => {
    const guesser = '198.51.100.7';
    for (let i = 0; i < LIMIT; i++) expect(await attempt(guesser, `guess-${i}`)).toEqual({ code: ReasonCode.BadUserNameOrPassword, hashes: 1 });
    expect(await attempt(guesser, 'guess-new')).toEqual({ code: ReasonCode.ConnectionRateExceeded, hashes: 0 });
    expect(await attempt(guesser, 'guess-3.1.1', { protocolVersion: 4 })).toEqual({ code: 3, hashes: 0 });
    // The right user from elsewhere, and a wrong password from elsewhere, are checked as before.
    expect(await attempt('203.0.113.9', 'carol-password')).toEqual({ code: 0, hashes: 1 });
    expect(await attempt('203.0.113.10', 'another-guess')).toEqual({ code: ReasonCode.BadUserNameOrPassword, hashes: 1 });
  });

  it('the exact same wrong password is refused again without a hash; a password verified lately is accepted without one', async () => {
    const mistyper = '192.0.2.44';
    expect(await attempt(mistyper, 'carol-pasword')).toEqual({ code: ReasonCode.BadUserNameOrPassword, hashes: 1 });
    expect(await attempt(mistyper, 'carol-pasword')).toEqual({ code: ReasonCode.BadUserNameOrPassword, hashes: 0 });
    expect(await attempt(mistyper, 'carol-password')).toEqual({ code: 0, hashes: 0 });
  });
});

describe('on the API Gateway door', () => {
  // The emulator's sourceIp is the browser's socket address: 127.0.0.1 for every client here.
  const browserDoor = useHarness({ security: { allowAnonymous: false, authFailureRate: { count: 2, perSeconds: 600 } } });
  beforeAll(async () => {
    await browserDoor().securityStore.putUser({ username: 'carol', passwordHash: await hashPassword('carol-password', { logN: 12, r: 8, p: 1 }) });
  });

  it("counts failures per the event's sourceIp: the third wrong password is refused without a hash", async () => {
    const connack = (password: string): Promise<number> =>
      connectThroughApiGateway(browserDoor().apigwUrl, { protocolVersion: 5, username: 'carol', password }).then(
        (client) => (clients.push(client), 0),
        (error: { code?: number }) => error.code ?? -1,
      );
    const hashes = browserDoor().passwordHashes();
    expect([await connack('guess-a'), await connack('guess-b'), await connack('guess-c')]).toEqual([
      ReasonCode.BadUserNameOrPassword,
      ReasonCode.BadUserNameOrPassword,
      ReasonCode.ConnectionRateExceeded,
    ]);
    expect(browserDoor().passwordHashes() - hashes).toBe(2);
  });
});
