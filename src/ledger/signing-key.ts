import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { exportPrivateKeyPem, generateEd25519KeyPair, loadEd25519PrivateKey, parseEd25519PrivateKey } from '../platform/crypto/ed25519.js';
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

/**
 * FG_LEDGER_KEY_PATH in every profile when set (staging/prod refuse to start without it). In dev
 * a key is generated once into the data directory so checkpoints stay verifiable across restarts;
 * tests on a throwaway database use an ephemeral key.
 */
export async function loadLedgerSigningKey(opts: { keyPath: string | undefined; dataDir: string | undefined }): Promise<LedgerSigningKey> {
  if (opts.keyPath) return fromPrivateKey(await loadEd25519PrivateKey(opts.keyPath), opts.keyPath);
  if (!opts.dataDir) return fromPrivateKey(generateEd25519KeyPair().privateKey, 'ephemeral');
  const file = path.join(opts.dataDir, 'keys', 'ledger-ed25519.pem');
  try {
    return fromPrivateKey(parseEd25519PrivateKey(await readFile(file), file), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = generateEd25519KeyPair();
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, exportPrivateKeyPem(privateKey), { mode: 0o600, flag: 'wx' });
  return fromPrivateKey(privateKey, `${file} (generated)`);
}
