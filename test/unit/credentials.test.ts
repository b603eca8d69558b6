/** Password hashes and JWT verification: secret, PEM public key, and a JWKS served over HTTP on loopback; the options a safe check needs. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJwtVerifier, JwtOptionsError, looksLikeJwt } from '../../shared/security/jwt';
import { hashPassword, unknownUserHash, verifyPassword } from '../../shared/security/password';

describe('password hashes (scrypt)', () => {
  it('verifies the password it hashed and nothing else; every hash has its own salt', async () => {
    const [a, b] = await Promise.all([hashPassword('correct horse'), hashPassword('correct horse')]);
    expect(a).toMatch(/^scrypt\$15\$8\$3\$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct hors', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
  });

  it('refuses hashes it did not write, and ones asking for absurd cost', async () => {
    expect(await verifyPassword('x', 'plain-text')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$30$8$1$AAAA$AAAA')).toBe(false);
    expect(await verifyPassword('x', unknownUserHash)).toBe(false);
  });
});

const secret = 'a test secret that is long enough for HS256';
const audience = 'mqtt-broker';
const sign = (claims: Record<string, unknown>, expiresIn: string | number = '5m', key: Uint8Array = new TextEncoder().encode(secret), aud: string = audience) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(String(claims.sub ?? 'alice')).setAudience(aud).setExpirationTime(expiresIn).sign(key);

describe('JWT', () => {
  it('tells tokens from passwords', () => {
    expect(looksLikeJwt('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln')).toBe(true);
    expect(looksLikeJwt('hunter2')).toBe(false);
    expect(looksLikeJwt('a.b')).toBe(false);
  });

  it('accepts a token signed with the secret, with its ACL claim; refuses a wrong key, expiry, missing exp', async () => {
    const verifier = createJwtVerifier({ secret, audience });
    expect(await verifier.verify(await sign({ sub: 'alice', acl: ['readwrite a/#'] }))).toEqual({
      ok: true,
      identity: { username: 'alice', acl: ['readwrite a/#'], expiresAt: expect.any(Number) },
    });
    expect((await verifier.verify(await sign({}, '5m', new TextEncoder().encode('another secret, also long enough')))).ok).toBe(false);
    expect((await verifier.verify(await sign({}, Math.floor(Date.now() / 1000) - 60))).ok).toBe(false);
    const noExp = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setAudience(audience).sign(new TextEncoder().encode(secret));
    expect((await verifier.verify(noExp)).ok).toBe(false);
    expect((await verifier.verify(await sign({ acl: 'readwrite #' }))).ok).toBe(false);
  });

  it('refuses a token made for another audience, or for none', async () => {
    const verifier = createJwtVerifier({ secret, audience });
    expect(await verifier.verify(await sign({}, '5m', undefined, 'another-service'))).toMatchObject({ ok: false, reason: expect.stringMatching(/aud/) });
    const noAud = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    expect((await verifier.verify(noAud)).ok).toBe(false);
  });

  it('checks the issuer when configured, and reads the user name from the configured claim', async () => {
    const verifier = createJwtVerifier({ secret, issuer: 'https://issuer.example', audience: 'mqtt', usernameClaim: 'preferred_username' });
    const good = await new SignJWT({ preferred_username: 'bob' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://issuer.example')
      .setAudience('mqtt')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    expect(await verifier.verify(good)).toEqual({ ok: true, identity: { username: 'bob', expiresAt: expect.any(Number) } });
    // the right audience, but no issuer
    expect((await verifier.verify(await sign({ preferred_username: 'bob' }, '5m', undefined, 'mqtt'))).ok).toBe(false);
  });

  it('refuses alg "none" and an HMAC token when a public key is configured (no algorithm confusion)', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const pem = await exportSPKI(publicKey);
    const verifier = createJwtVerifier({ publicKey: pem, audience });
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', exp: 9999999999 })).toString('base64url')}.`;
    expect((await verifier.verify(unsigned)).ok).toBe(false);
    expect((await verifier.verify(await sign({}, '5m', new TextEncoder().encode(pem)))).ok).toBe(false);
  });

  it('says which key source is missing or unreadable', () => {
    expect(() => createJwtVerifier({ audience })).toThrow(/exactly one of a secret, a public key \(PEM\) or a JWKS URL/);
    expect(() => createJwtVerifier({ publicKey: 'not a key', audience })).toThrow(/not a PEM public key/);
    expect(() => createJwtVerifier({ jwksUrl: 'nope', audience, issuer: 'https://issuer.example' })).toThrow(/not a URL/);
  });

  it('requires an audience with any key source; with a JWKS URL an issuer too, and https (http on loopback only)', () => {
    const refusal = (options: Parameters<typeof createJwtVerifier>[0]) => {
      try {
        createJwtVerifier(options);
        return undefined;
      } catch (error) {
        return error instanceof JwtOptionsError ? error.option : String(error);
      }
    };
    const issuer = 'https://issuer.example';
    expect(refusal({ secret })).toBe('audience');
    expect(refusal({ publicKey: 'irrelevant' })).toBe('audience');
    expect(refusal({ jwksUrl: 'https://issuer.example/jwks.json', issuer })).toBe('audience');
    expect(refusal({ jwksUrl: 'https://issuer.example/jwks.json', audience })).toBe('issuer');
    for (const url of ['http://issuer.example/jwks.json', 'http://10.0.0.5/jwks.json', 'ftp://issuer.example/jwks.json', 'http://127.0.0.1.example.com/jwks']) {
      expect(refusal({ jwksUrl: url, audience, issuer }), url).toBe('jwksUrl');
    }
    for (const url of ['https://issuer.example/jwks.json', 'http://127.0.0.1:8080/jwks.json', 'http://localhost/jwks.json', 'http://[::1]:9000/jwks.json']) {
      expect(refusal({ jwksUrl: url, audience, issuer }), url).toBeUndefined();
    }
    expect(refusal({ secret, audience })).toBeUndefined();
  });

  describe('with keys from a JWKS URL', () => {
    let server: http.Server;
    let url = '';
    let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
    beforeAll(async () => {
      const pair = await generateKeyPair('RS256');
      privateKey = pair.privateKey;
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
      server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const jwksToken = () =>
      new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('carol').setIssuer('https://issuer.example').setAudience(audience).setExpirationTime('5m');

    it('verifies a token signed with a published key', async () => {
      const token = await jwksToken().sign(privateKey);
      const verifier = createJwtVerifier({ jwksUrl: url, audience, issuer: 'https://issuer.example' });
      expect(await verifier.verify(token)).toEqual({ ok: true, identity: { username: 'carol', expiresAt: expect.any(Number) } });
      // signed with the published key, but for another issuer (a tenant of the same provider)
      expect((await verifier.verify(await jwksToken().setIssuer('https://issuer.example/other-tenant').sign(privateKey))).ok).toBe(false);
    });

    it('reports unreachable keys as unavailable, not as a bad token', async () => {
      const token = await jwksToken().sign(privateKey);
      const closed = await new Promise<string>((resolve) => {
        const s = http.createServer().listen(0, '127.0.0.1', () => {
          const port = (s.address() as AddressInfo).port;
          s.close(() => resolve(`http://127.0.0.1:${port}/jwks.json`));
        });
      });
      const check = await createJwtVerifier({ jwksUrl: closed, audience, issuer: 'https://issuer.example' }).verify(token);
      expect(check).toMatchObject({ ok: false, unavailable: true });
    });
  });
});
