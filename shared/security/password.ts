/**
 * Password hashes: salted scrypt (node:crypto), in a self-describing string
 * `scrypt$<log2 N>$<r>$<p>$<salt, base64>$<hash, base64>`, so the cost can rise later without
 * invalidating stored hashes. Verification compares in constant time.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParameters {
  /** log2 of the CPU/memory cost N. */
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

/** OWASP's scrypt setting for 32 MiB of memory: N = 2^15, r = 8, p = 3. */
export const defaultScryptParameters: ScryptParameters = { logN: 15, r: 8, p: 3 };

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const PREFIX = 'scrypt';

function derive(password: string, salt: Buffer, params: ScryptParameters): Promise<Buffer> {
  const N = 2 ** params.logN;
  // scrypt needs 128 * N * r bytes; node refuses above maxmem (32 MiB by default), so say what we need.
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 128 * N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export async function hashPassword(password: string, params: ScryptParameters = defaultScryptParameters): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, params);
  return [PREFIX, params.logN, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** False for a wrong password and for a hash this module did not write. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parsed = parseHash(encoded);
  if (!parsed) return false;
  const key = await derive(password, parsed.salt, parsed.params);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/**
 * A hash of a password nobody knows, for unknown user names: verifying against it costs what a
 * real verification costs, so response time does not tell which user names exist.
 */
export const unknownUserHash = `${PREFIX}$${defaultScryptParameters.logN}$${defaultScryptParameters.r}$${defaultScryptParameters.p}$${Buffer.alloc(SALT_LENGTH).toString('base64')}$${Buffer.alloc(KEY_LENGTH).toString('base64')}`;

function parseHash(encoded: string): { params: ScryptParameters; salt: Buffer; key: Buffer } | undefined {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== PREFIX) return undefined;
  const [logN, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  // Bounds keep a corrupted or planted hash from asking for gigabytes or hours.
  if (![logN, r, p].every(Number.isInteger) || logN < 10 || logN > 20 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  return { params: { logN, r, p }, salt: Buffer.from(parts[4]!, 'base64'), key: Buffer.from(parts[5]!, 'base64') };
}
