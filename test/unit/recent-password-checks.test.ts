/**
 * The container's memory of recent password checks (shared/security/recent-password-checks.ts):
 * bounded, least recently used out first; an accepted password only for SUCCESS_TTL_MS; an entry
 * tied to the stored hash it was checked against, so a changed password matches nothing.
 */
import { describe, expect, it } from 'vitest';
import { RecentPasswordChecks, SUCCESS_TTL_MS } from '../../shared/security/recent-password-checks';

describe('recent password checks', () => {
  it('remembers a wrong password against the same stored hash only', () => {
    const checks = new RecentPasswordChecks(10);
    checks.remember(checks.digest('carol', 'guess', 'hash-1'), false);
    expect(checks.knownWrong(checks.digest('carol', 'guess', 'hash-1'))).toBe(true);
    expect(checks.knownWrong(checks.digest('carol', 'guess', 'hash-2'))).toBe(false);
    expect(checks.knownWrong(checks.digest('carol', 'guess2', 'hash-1'))).toBe(false);
    // The parts are length-prefixed: moving a character from one part to the next is another entry.
    expect(checks.digest('caro', 'lguess', 'hash-1')).not.toBe(checks.digest('carol', 'guess', 'hash-1'));
  });

  it('accepts a verified password again for SUCCESS_TTL_MS', () => {
    const clock = { now: 0 };
    const checks = new RecentPasswordChecks(10, () => clock.now);
    const digest = checks.digest('carol', 'right', 'hash-1');
    checks.remember(digest, true);
    clock.now += SUCCESS_TTL_MS;
    expect(checks.knownRight(digest)).toBe(true);
    clock.now += 1;
    expect(checks.knownRight(digest)).toBe(false);
  });

  it('holds at most maxEntries in each table, the least recently used going first; 0 holds none', () => {
    const checks = new RecentPasswordChecks(2);
    const [a, b, c] = ['a', 'b', 'c'].map((password) => checks.digest('carol', password, 'hash'));
    checks.remember(a!, false);
    checks.remember(b!, false);
    expect(checks.knownWrong(a!)).toBe(true); // a is now the most recently used
    checks.remember(c!, false);
    expect([checks.knownWrong(a!), checks.knownWrong(b!), checks.knownWrong(c!)]).toEqual([true, false, true]);
    const none = new RecentPasswordChecks(0);
    none.remember(a!, false);
    none.remember(b!, true);
    expect([none.knownWrong(a!), none.knownRight(b!)]).toEqual([false, false]);
  });
});
