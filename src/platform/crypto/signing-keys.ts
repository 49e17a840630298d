import type { KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exportPrivateKeyPem, generateEd25519KeyPair, loadEd25519PrivateKey, parseEd25519PrivateKey } from './ed25519.js';

/**
 * Where a signing key comes from, in one place for every key of the platform (ledger checkpoints,
 * access tokens, verdicts): the configured file when set (staging/prod refuse to start without
 * it); in dev a key generated once into `<dataDir>/keys/<name>.pem`, so signatures stay
 * verifiable across restarts; otherwise an ephemeral key.
 */
export async function loadSigningKey(opts: {
  keyPath: string | undefined;
  dataDir: string | undefined;
  name: string;
}): Promise<{ privateKey: KeyObject; source: string }> {
  if (opts.keyPath) return { privateKey: await loadEd25519PrivateKey(opts.keyPath), source: opts.keyPath };
  if (!opts.dataDir) return { privateKey: generateEd25519KeyPair().privateKey, source: 'ephemeral' };
  const file = path.join(opts.dataDir, 'keys', `${opts.name}.pem`);
  try {
    return { privateKey: parseEd25519PrivateKey(await readFile(file), file), source: file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = generateEd25519KeyPair();
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, exportPrivateKeyPem(privateKey), { mode: 0o600, flag: 'wx' });
  return { privateKey, source: `${file} (generated)` };
}
