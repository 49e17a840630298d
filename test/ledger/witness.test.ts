import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { signCheckpoint } from '../../src/ledger/checkpoint.js';
import { createNoteSigner, verifierOf } from '../../src/ledger/note.js';
import { MAX_WITNESS_READS, witnessAnchors, witnessKey } from '../../src/ledger/witness.js';
import { generateEd25519KeyPair } from '../../src/platform/crypto/ed25519.js';
import { FilesystemStorage } from '../../src/platform/storage/filesystem.js';

it('verification reads a bounded, evenly spread part of a long exported history, the oldest and newest always', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'fg-witness-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storage = new FilesystemStorage(dir);
  const signer = createNoteSigner('frostgate-ledger', generateEd25519KeyPair().privateKey);
  const origin = 'frostgate.ledger/acme/decisions';
  const sizes = Array.from({ length: 600 }, (_, i) => (i + 1) * 3);
  for (const size of sizes) {
    const rootHash = createHash('sha256').update(String(size)).digest();
    await storage.put(witnessKey('acme', 'decisions', size), Buffer.from(signCheckpoint({ origin, treeSize: size, rootHash }, signer)));
  }
  await storage.put('ledger-witness/acme/decisions/latest.checkpoint', Buffer.from('not part of the history'));

  const { anchors, problems, total } = await witnessAnchors(storage, 'acme', 'decisions', [verifierOf(signer)], origin);
  assert.deepEqual(problems, []);
  assert.equal(total, 600);
  assert.equal(anchors.length, MAX_WITNESS_READS);
  assert.equal(anchors[0]!.treeSize, 3);
  assert.equal(anchors.at(-1)!.treeSize, 1800);
  const gaps = anchors.slice(1).map((a, i) => a.treeSize - anchors[i]!.treeSize);
  assert.ok(Math.max(...gaps) <= 3 * 3, `evenly spread: largest gap ${Math.max(...gaps)}`);

  // Another tenant's log, or an untrusted key, are problems.
  const other = await witnessAnchors(storage, 'acme', 'decisions', [verifierOf(signer)], 'frostgate.ledger/beta/decisions');
  assert.equal(other.anchors.length, 0);
  assert.match(other.problems[0]!, /checkpoint is for log "frostgate\.ledger\/acme\/decisions", expected "frostgate\.ledger\/beta\/decisions"/);
  const stranger = createNoteSigner('frostgate-ledger', generateEd25519KeyPair().privateKey);
  assert.match((await witnessAnchors(storage, 'acme', 'decisions', [verifierOf(stranger)], origin)).problems[0]!, /not signed by any known key/);
});
