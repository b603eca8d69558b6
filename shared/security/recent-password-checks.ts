/**
 * The password checks this container made lately, so that a repeat costs an HMAC instead of a
 * scrypt hash: the exact same wrong password for a user is refused again at once, and a password
 * verified in the last SUCCESS_TTL_MS is accepted again at once. An entry is an HMAC-SHA256, under
 * a key made at random per container and never stored, of the user name, the password and the
 * stored hash it was checked against: a changed password (a new hash) or a deleted user matches no
 * entry, and the table holds nothing a password can be read back from. Two bounded LRU tables;
 * memory only, so correctness never depends on them (a cold container hashes as before).
 */
import { createHmac, randomBytes } from 'node:crypto';

/** How long an accepted password is accepted again without hashing. */
export const SUCCESS_TTL_MS = 60_000;

export class RecentPasswordChecks {
  private readonly key = randomBytes(32);
  private readonly failed = new Map<string, true>();
  /** digest -> when it was verified (epoch ms) */
  private readonly succeeded = new Map<string, number>();

  constructor(
    /** Entries in each table; 0 remembers nothing. */
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  digest(username: string, password: string, storedHash: string): string {
    const hmac = createHmac('sha256', this.key);
    for (const part of [username, password, storedHash]) hmac.update(`${Buffer.byteLength(part)}:`).update(part);
    return hmac.digest('base64');
  }

  /** The same password was found wrong against the same hash. */
  knownWrong(digest: string): boolean {
    return touch(this.failed, digest);
  }

  /** The same password was verified against the same hash within SUCCESS_TTL_MS. */
  knownRight(digest: string): boolean {
    const at = this.succeeded.get(digest);
    if (at === undefined) return false;
    if (this.now() - at > SUCCESS_TTL_MS) {
      this.succeeded.delete(digest);
      return false;
    }
    return true;
  }

  remember(digest: string, right: boolean): void {
    if (right) {
      this.failed.delete(digest);
      add(this.succeeded, digest, this.now(), this.maxEntries);
    } else {
      add(this.failed, digest, true, this.maxEntries);
    }
  }
}

/** A hit moves the entry to the most recently used end. */
function touch<V>(table: Map<string, V>, key: string): boolean {
  const value = table.get(key);
  if (value === undefined) return false;
  table.delete(key);
  table.set(key, value);
  return true;
}

function add<V>(table: Map<string, V>, key: string, value: V, maxEntries: number): void {
  if (maxEntries <= 0) return;
  table.delete(key);
  table.set(key, value);
  // The least recently used go first (a Map iterates in insertion order).
  while (table.size > maxEntries) table.delete(table.keys().next().value!);
}
