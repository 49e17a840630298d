import type { KeyObject } from 'node:crypto';
import { loadSigningKey } from '../platform/crypto/signing-keys.js';
import { createNoteSigner, formatKeyId, formatVerifierKey, type NoteSigner } from './note.js';

/** Key name in every checkpoint signature line; one key signs every tenant's logs. */
export const LEDGER_KEY_NAME = 'frostgate-ledger';

export interface LedgerSigningKey {
  readonly signer: NoteSigner;
  /** `name+hexid+base64(0x01||pub)`: what verifiers need. */
  readonly vkey: string;
  readonly keyId: string;
  /** Where it came from, for startup logs: a file, a generated dev key, or ephemeral. */
  readonly source: string;
}

function fromPrivateKey(privateKey: KeyObject, source: string): LedgerSigningKey {
  const signer = createNoteSigner(LEDGER_KEY_NAME, privateKey);
  return { signer, vkey: formatVerifierKey(signer), keyId: formatKeyId(signer.keyId), source };
}

/** The ledger key: FG_LEDGER_KEY_PATH, the dev key in the data directory, or ephemeral (loadSigningKey). */
export async function loadLedgerSigningKey(opts: { keyPath: string | undefined; dataDir: string | undefined }): Promise<LedgerSigningKey> {
  const { privateKey, source } = await loadSigningKey({ ...opts, name: 'ledger-ed25519' });
  return fromPrivateKey(privateKey, source);
}
