import type { KeyObject } from 'node:crypto';
import { exportPublicKeyRaw, publicKeyOf } from '../../platform/crypto/ed25519.js';
import { loadSigningKey } from '../../platform/crypto/signing-keys.js';
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

/** The token key: FG_TOKEN_KEY_PATH, the dev key in the data directory, or ephemeral (loadSigningKey). */
export async function loadTokenSigningKey(opts: { keyPath: string | undefined; dataDir: string | undefined }): Promise<TokenSigningKey> {
  const { privateKey, source } = await loadSigningKey({ ...opts, name: 'token-ed25519' });
  return fromPrivate(privateKey, source);
}
