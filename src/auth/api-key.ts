import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * An API key reads `bst_<id>_<secret>`: the id (public, 12 hex digits) finds the stored record without
 * scanning, the secret (32 random bytes, base64url) proves possession. Only a SHA-256 digest of the
 * secret is stored: with 256 bits of entropy a slow password hash adds nothing, and a digest keeps every
 * request cheap.
 */
const PREFIX = 'bst';
const KEY_SHAPE = /^bst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface IssuedKey {
  id: string;
  /** The whole key, shown once. */
  key: string;
  /** What is stored. */
  hash: string;
}

export function issueKey(): IssuedKey {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, key: `${PREFIX}_${id}_${secret}`, hash: digest(secret) };
}

/** The id and secret of a well-formed key, or null. */
export function parseKey(token: string): { id: string; secret: string } | null {
  const match = KEY_SHAPE.exec(token);
  return match ? { id: match[1] as string, secret: match[2] as string } : null;
}

/** Security: compares digests in constant time, so timing says nothing about how much of a secret matched. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const expected = Buffer.from(storedHash, 'hex');
  const actual = Buffer.from(digest(secret), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
