import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/**
 * Ed25519 over node:crypto: the one signing module for ledger checkpoints, Forge verdicts and
 * tokens. Keys travel as node KeyObjects; files and wire formats are converted here only.
 *
 * Private key files (`loadEd25519PrivateKey`), detected by content:
 *   1. PEM, PKCS#8 (`-----BEGIN PRIVATE KEY-----`), as written by `openssl genpkey -algorithm ed25519`
 *      or `exportPrivateKeyPem`;
 *   2. exactly 32 bytes: the raw RFC 8032 seed;
 *   3. text holding the 32-byte seed as 64 hex digits or as base64 (standard or url-safe),
 *      surrounding whitespace ignored — the form secret managers hand out.
 * Public key files (`loadEd25519PublicKey`): PEM SPKI (`-----BEGIN PUBLIC KEY-----`), exactly 32
 * raw bytes, or 64 hex digits / base64 of the 32 bytes.
 */

export type Ed25519KeyErrorCode = 'ed25519_key_invalid' | 'ed25519_key_unreadable';

export class Ed25519KeyError extends Error {
  readonly code: Ed25519KeyErrorCode;
  constructor(code: Ed25519KeyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Ed25519KeyError';
    this.code = code;
  }
}

export interface Ed25519KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export const ED25519_SEED_SIZE = 32;
export const ED25519_PUBLIC_KEY_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;

// DER prefixes of the fixed-length PKCS#8 / SPKI encodings of an Ed25519 key (RFC 8410); the key
// bytes follow them directly.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function assertEd25519(key: KeyObject, type: 'private' | 'public'): void {
  if (key.type !== type || key.asymmetricKeyType !== 'ed25519') {
    throw new Ed25519KeyError('ed25519_key_invalid', `expected an Ed25519 ${type} key, got a ${key.asymmetricKeyType ?? 'symmetric'} ${key.type} key`);
  }
}

export function generateEd25519KeyPair(): Ed25519KeyPair {
  return generateKeyPairSync('ed25519');
}

/** The private key for a 32-byte RFC 8032 seed. */
export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== ED25519_SEED_SIZE) {
    throw new Ed25519KeyError('ed25519_key_invalid', `an Ed25519 seed is ${ED25519_SEED_SIZE} bytes, got ${seed.length}`);
  }
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** The public key for its 32-byte RFC 8032 encoding. */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== ED25519_PUBLIC_KEY_SIZE) {
    throw new Ed25519KeyError('ed25519_key_invalid', `an Ed25519 public key is ${ED25519_PUBLIC_KEY_SIZE} bytes, got ${raw.length}`);
  }
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new Ed25519KeyError('ed25519_key_invalid', 'not a valid Ed25519 public key', { cause });
  }
}

export function publicKeyOf(privateKey: KeyObject): KeyObject {
  assertEd25519(privateKey, 'private');
  return createPublicKey(privateKey);
}

/** The 32-byte seed of a private key (for writing a raw key file). Handle as a secret. */
export function exportPrivateKeySeed(privateKey: KeyObject): Buffer {
  assertEd25519(privateKey, 'private');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - ED25519_SEED_SIZE));
}

export function exportPrivateKeyPem(privateKey: KeyObject): string {
  assertEd25519(privateKey, 'private');
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The 32-byte RFC 8032 encoding of a public key (a private key is accepted and its public half used). */
export function exportPublicKeyRaw(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? publicKeyOf(key) : key;
  assertEd25519(publicKey, 'public');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - ED25519_PUBLIC_KEY_SIZE));
}

export function exportPublicKeyPem(key: KeyObject): string {
  const publicKey = key.type === 'private' ? publicKeyOf(key) : key;
  assertEd25519(publicKey, 'public');
  return publicKey.export({ format: 'pem', type: 'spki' }).toString();
}

/** 32 key bytes written as text: 64 hex digits or base64 (standard or url-safe, padding optional). */
function decodeTextKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === 32) return bytes;
  }
  return undefined;
}

/** Parses private key material in any of the documented file formats. */
export function parseEd25519PrivateKey(content: Uint8Array | string, source = 'key'): KeyObject {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  const text = bytes.toString('utf8');
  if (text.includes('-----BEGIN')) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: text, format: 'pem' });
    } catch (cause) {
      throw new Ed25519KeyError('ed25519_key_invalid', `${source}: not a readable PEM private key`, { cause });
    }
    assertEd25519(key, 'private');
    return key;
  }
  if (bytes.length === ED25519_SEED_SIZE) return privateKeyFromSeed(bytes);
  const seed = decodeTextKey(text);
  if (seed) return privateKeyFromSeed(seed);
  throw new Ed25519KeyError('ed25519_key_invalid', `${source}: expected a PKCS#8 PEM Ed25519 private key, a raw 32-byte seed, or the seed as hex/base64 text`);
}

/** Parses public key material: PEM SPKI, 32 raw bytes, or the 32 bytes as hex/base64 text. */
export function parseEd25519PublicKey(content: Uint8Array | string, source = 'key'): KeyObject {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  const text = bytes.toString('utf8');
  if (text.includes('-----BEGIN')) {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: text, format: 'pem' });
    } catch (cause) {
      throw new Ed25519KeyError('ed25519_key_invalid', `${source}: not a readable PEM public key`, { cause });
    }
    assertEd25519(key, 'public');
    return key;
  }
  if (bytes.length === ED25519_PUBLIC_KEY_SIZE) return publicKeyFromRaw(bytes);
  const raw = decodeTextKey(text);
  if (raw) return publicKeyFromRaw(raw);
  throw new Ed25519KeyError('ed25519_key_invalid', `${source}: expected a PEM Ed25519 public key, 32 raw bytes, or hex/base64 text`);
}

async function readKeyFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new Ed25519KeyError('ed25519_key_unreadable', `cannot read key file ${path}`, { cause });
  }
}

/** Loads a private key file (e.g. FG_LEDGER_KEY_PATH) in any documented format. */
export async function loadEd25519PrivateKey(path: string): Promise<KeyObject> {
  return parseEd25519PrivateKey(await readKeyFile(path), path);
}

export async function loadEd25519PublicKey(path: string): Promise<KeyObject> {
  return parseEd25519PublicKey(await readKeyFile(path), path);
}

export function signEd25519(privateKey: KeyObject, message: Uint8Array): Buffer {
  assertEd25519(privateKey, 'private');
  return cryptoSign(null, message, privateKey);
}

/** True only for a valid signature by `publicKey` over exactly `message`; never throws on bad input. */
export function verifyEd25519(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  assertEd25519(publicKey, 'public');
  if (signature.length !== ED25519_SIGNATURE_SIZE) return false;
  try {
    return cryptoVerify(null, message, publicKey, signature);
  } catch {
    return false;
  }
}
