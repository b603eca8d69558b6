/**
 * A device certificate is the authentication (mutual TLS, shared/listener/tls-door.ts): the
 * identity the listener vouches for is the user, whatever the CONNECT's user name and password,
 * and nothing is read from the Security table for it.
 */
import { describe, expect, it } from 'vitest';
import type { SecurityStore } from '../../shared/broker/ports';
import { BrokerSecurity } from '../../shared/security/broker-security';
import { createJwtVerifier } from '../../shared/security/jwt';
import { ReasonCode } from '../../shared/protocol/reason-codes';

/** A Security table that must not be touched. */
const untouchable = new Proxy({} as SecurityStore, {
  get: (_target, name) => () => {
    throw new Error(`the Security table was read (${String(name)})`);
  },
});

const security = new BrokerSecurity(
  { allowAnonymous: false, jwt: createJwtVerifier({ secret: 'a secret of at least 32 bytes, for tests', audience: 'mqtt' }) },
  untouchable,
);

describe('authentication by device certificate', () => {
  it("is the certificate's identity, the CONNECT's user name and password (a token's too) unused and unchecked", async () => {
    for (const credentials of [{}, { username: 'alice', password: Buffer.from('wrong') }, { username: 'x', password: Buffer.from('a.b.c') }, { username: 'no-password' }]) {
      expect(await security.authenticate({ connectionId: 'c1', certificateUser: 'sensor-1', ...credentials })).toEqual({ ok: true, identity: { username: 'sensor-1' } });
    }
  });

  it('still refuses an Authentication Method (0x8C), and an identity over 256 bytes (0x86)', async () => {
    expect(await security.authenticate({ connectionId: 'c1', certificateUser: 'sensor-1', authenticationMethod: 'SCRAM-SHA-1' })).toMatchObject({ ok: false, reasonCode: ReasonCode.BadAuthenticationMethod });
    expect(await security.authenticate({ connectionId: 'c1', certificateUser: 'x'.repeat(257) })).toMatchObject({ ok: false, reasonCode: ReasonCode.BadUserNameOrPassword });
  });
});
