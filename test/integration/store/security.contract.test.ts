/**
 * The SecurityStore's contract, against DynamoDB Local (and the users CLI's administration
 * methods): users read back as written; a door identity serves one CONNECT, and none once it has
 * expired; a windowed counter adds up within its window only.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DynamoSecurityStore } from '../../../shared/store/dynamo-security';
import { storeFixtureForFile } from '../store-fixture';

let now = Date.now();
const fixture = await storeFixtureForFile();
const security = new DynamoSecurityStore({ client: fixture.documentClient, table: fixture.tables.security, now: () => now });

const unique = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

describe('users', () => {
  it('are read back as written, listed by name, and gone once deleted', async () => {
    const alice = { username: unique('alice'), passwordHash: 'scrypt$a', acl: ['read a/#', 'write a/+'] };
    const bob = { username: unique('bob'), passwordHash: 'scrypt$b' };
    await security.putUser(bob);
    await security.putUser(alice);
    expect(await security.getUser(alice.username)).toEqual(alice);
    expect(await security.getUser(bob.username)).toEqual(bob);
    expect(await security.getUser(unique('nobody'))).toBeUndefined();
    expect((await security.listUsers()).map((u) => u.username)).toEqual([alice.username, bob.username].sort());
    // Written again: replaced.
    await security.putUser({ ...alice, acl: [] });
    expect(await security.getUser(alice.username)).toEqual({ ...alice, acl: [] });
    expect(await security.deleteUser(alice.username)).toBe(true);
    expect(await security.deleteUser(alice.username)).toBe(false);
    expect(await security.getUser(alice.username)).toBeUndefined();
  });
});

describe('door identities', () => {
  it('serve one CONNECT: taken once, then gone', async () => {
    const connectionId = unique('conn');
    await security.putDoorIdentity(connectionId, { username: 'carol', acl: ['read c/#'] }, Math.ceil(now / 1000) + 60);
    expect(await security.takeDoorIdentity(connectionId)).toEqual({ username: 'carol', acl: ['read c/#'] });
    expect(await security.takeDoorIdentity(connectionId)).toBeUndefined();
  });

  it("keep when the identity's token expires", async () => {
    const connectionId = unique('conn');
    await security.putDoorIdentity(connectionId, { username: 'erin', tokenExpiresAt: now + 30_000 }, Math.ceil(now / 1000) + 30);
    expect(await security.takeDoorIdentity(connectionId)).toEqual({ username: 'erin', tokenExpiresAt: now + 30_000 });
  });

  it('are no identity once expired, though TTL has not deleted them yet', async () => {
    const connectionId = unique('conn');
    await security.putDoorIdentity(connectionId, { username: 'dave' }, Math.ceil(now / 1000) + 10);
    now += 11_000;
    expect(await security.takeDoorIdentity(connectionId)).toBeUndefined();
  });
});

describe('windowed counters', () => {
  it('add up within a window, each window apart, concurrent additions all counted', async () => {
    const key = unique('publish');
    const window = Math.floor(now / 1000 / 60) * 60;
    expect(await security.countInWindow(key, window, 60, 1)).toBe(1);
    expect(await security.countInWindow(key, window, 60, 2)).toBe(3);
    expect(await security.countInWindow(key, window + 60, 60, 1)).toBe(1);
    const totals = await Promise.all(Array.from({ length: 10 }, () => security.countInWindow(key, window, 60, 1)));
    expect(totals.sort((a, b) => a - b)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(await security.countInWindow(unique('other'), window, 60, 5)).toBe(5);
  });
});
