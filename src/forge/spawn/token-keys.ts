import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { exportPrivateKeyPem, exportPublicKeyRaw, generateEd25519KeyPair, loadEd25519PrivateKey, parseEd25519PrivateKey, publicKeyOf } from '../../platform/crypto/ed25519.js';
import { createHash } from 'node:crypto';

export interface TokenSigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** `kid` header of every token: first 8 bytes (hex) of SHA-256 of the raw public key. */
  readonly kid: string;
  readonly source: string;
}

function fromPrivate(privateKey: KeyObject, source: string): TokenSigningKey {
  const publicKey = publicKeyOf(privateKey);
  const kid = createHash('sha256').update(exportPublicKeyRaw(publicKey)).digest('hex').slice(0, 16);
  return { privateKey, publicKey, kid, source };
}

/**
 * The Ed25519 key signing scenario access tokens: FG_TOKEN_KEY_PATH when set (required in
 * staging/prod), a key generated once into the data directory in dev, ephemeral otherwise.
 */
export async function loadTokenSigningKey(opts: { keyPath: string | undefined; dataDir: string | undefined }): Promise<TokenSigningKey> {
  if (opts.keyPath) return fromPrivate(await loadEd25519PrivateKey(opts.keyPath), opts.keyPath);
  if (!opts.dataDir) return fromPrivate(generateEd25519KeyPair().privateKey, 'ephemeral');
  const file = path.join(opts.dataDir, 'keys', 'token-ed25519.pem');
  try {
    return fromPrivate(parseEd25519PrivateKey(await readFile(file), file), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = generateEd25519KeyPair();
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, exportPrivateKeyPem(privateKey), { mode: 0o600, flag: 'wx' });
  return fromPrivate(privateKey, `${file} (generated)`);
}
