import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { newId } from '../../platform/ids.js';

/**
 * An API key reads `fg_<id>_<secret>`: the id (the body of a `key_` id of platform/ids) finds the
 * row, the secret (32 random bytes, base64url) is never stored — only SHA-256 over the whole key is.
 */
const KEY_PATTERN = /^fg_([a-z2-9]{12})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedKey {
  /** Row id, `key_<id>`. */
  readonly id: string;
  /** The full key: shown once, never stored. */
  readonly key: string;
  readonly digest: Buffer;
}

export function digestKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export function generateKey(): GeneratedKey {
  const id = newId('key');
  const key = `fg_${id.slice('key_'.length)}_${randomBytes(32).toString('base64url')}`;
  return { id, key, digest: digestKey(key) };
}

/** The row id a presented key claims, or undefined when it is not shaped like a key. */
export function keyIdOf(presented: string): string | undefined {
  const m = KEY_PATTERN.exec(presented);
  return m ? `key_${m[1]}` : undefined;
}

export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
