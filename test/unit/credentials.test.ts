/** Password hashes and JWT verification: secret, PEM public key, and a JWKS served over HTTP on loopback. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJwtVerifier, looksLikeJwt } from '../../shared/security/jwt';
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
const sign = (claims: Record<string, unknown>, expiresIn: string | number = '5m', key: Uint8Array = new TextEncoder().encode(secret)) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(String(claims.sub ?? 'alice')).setExpirationTime(expiresIn).sign(key);

describe('JWT', () => {
  it('tells tokens from passwords', () => {
    expect(looksLikeJwt('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln')).toBe(true);
    expect(looksLikeJwt('hunter2')).toBe(false);
    expect(looksLikeJwt('a.b')).toBe(false);
  });

  it('accepts a token signed with the secret, with its ACL claim; refuses a wrong key, expiry, missing exp', async () => {
    const verifier = createJwtVerifier({ secret });
    expect(await verifier.verify(await sign({ sub: 'alice', acl: ['readwrite a/#'] }))).toEqual({
      ok: true,
      identity: { username: 'alice', acl: ['readwrite a/#'] },
    });
    expect((await verifier.verify(await sign({}, '5m', new TextEncoder().encode('another secret, also long enough')))).ok).toBe(false);
    expect((await verifier.verify(await sign({}, Math.floor(Date.now() / 1000) - 60))).ok).toBe(false);
    const noExp = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
    expect((await verifier.verify(noExp)).ok).toBe(false);
    expect((await verifier.verify(await sign({ acl: 'readwrite #' }))).ok).toBe(false);
  });

  it('checks issuer and audience when configured, and reads the user name from the configured claim', async () => {
    const verifier = createJwtVerifier({ secret, issuer: 'https://issuer.example', audience: 'mqtt', usernameClaim: 'preferred_username' });
    const good = await new SignJWT({ preferred_username: 'bob' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://issuer.example')
      .setAudience('mqtt')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    expect(await verifier.verify(good)).toEqual({ ok: true, identity: { username: 'bob' } });
    expect((await verifier.verify(await sign({ preferred_username: 'bob' }))).ok).toBe(false);
  });

  it('refuses alg "none" and an HMAC token when a public key is configured (no algorithm confusion)', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const pem = await exportSPKI(publicKey);
    const verifier = createJwtVerifier({ publicKey: pem });
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', exp: 9999999999 })).toString('base64url')}.`;
    expect((await verifier.verify(unsigned)).ok).toBe(false);
    expect((await verifier.verify(await sign({}, '5m', new TextEncoder().encode(pem)))).ok).toBe(false);
  });

  it('says which key source is missing or unreadable', () => {
    expect(() => createJwtVerifier({})).toThrow(/exactly one of a secret, a public key \(PEM\) or a JWKS URL/);
    expect(() => createJwtVerifier({ publicKey: 'not a key' })).toThrow(/not a PEM public key/);
    expect(() => createJwtVerifier({ jwksUrl: 'nope' })).toThrow(/not a URL/);
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

    it('verifies a token signed with a published key', async () => {
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('carol').setExpirationTime('5m').sign(privateKey);
      expect(await createJwtVerifier({ jwksUrl: url }).verify(token)).toEqual({ ok: true, identity: { username: 'carol' } });
    });

    it('reports unreachable keys as unavailable, not as a bad token', async () => {
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('carol').setExpirationTime('5m').sign(privateKey);
      const closed = await new Promise<string>((resolve) => {
        const s = http.createServer().listen(0, '127.0.0.1', () => {
          const port = (s.address() as AddressInfo).port;
          s.close(() => resolve(`http://127.0.0.1:${port}/jwks.json`));
        });
      });
      const check = await createJwtVerifier({ jwksUrl: closed }).verify(token);
      expect(check).toMatchObject({ ok: false, unavailable: true });
    });
  });
});
