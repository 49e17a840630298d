import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateEd25519KeyPair, privateKeyFromSeed } from '../../src/platform/crypto/ed25519.js';
import { formatCheckpoint, parseCheckpoint, signCheckpoint, verifyCheckpoint, type Checkpoint } from '../../src/ledger/checkpoint.js';
import { LedgerError } from '../../src/ledger/errors.js';
import { EMPTY_TREE_ROOT } from '../../src/ledger/hash.js';
import { MerkleLog } from '../../src/ledger/merkle.js';
import { InMemoryMerkleNodeStore } from '../../src/ledger/node-store.js';
import { createNoteSigner, formatVerifierKey, parseVerifierKey, verifierOf } from '../../src/ledger/note.js';
import { verifyConsistency } from '../../src/ledger/proof-verify.js';
import { recordLeafHash } from '../../src/ledger/record.js';

const ORIGIN = 'frostgate.test/ledger/tenant-a';
const isLedgerError = (code: string) => (err: unknown) => err instanceof LedgerError && err.code === code;
const fixedSigner = (name: string, byte: number) => createNoteSigner(name, privateKeyFromSeed(Buffer.alloc(32, byte)));

async function tenantLog(size: number): Promise<MerkleLog> {
  const log = await MerkleLog.open(new InMemoryMerkleNodeStore());
  for (let i = 0; i < size; i++) await log.append(recordLeafHash({ decision_id: `dec_${i}`, tenant_id: 'tenant-a', score: i / 10 }));
  return log;
}

describe('tlog checkpoint', () => {
  it('formats the C2SP body exactly and parses it back', () => {
    const root = Buffer.from('0a c5 18 6a 91 86 3e 8e 1d 90 c8 08 01 4a a8 9b f5 da 8e 3e e1 d9 f0 76 30 f0 37 8f 68 f1 ab 62'.replace(/ /g, ''), 'hex');
    const cp: Checkpoint = { origin: 'example.com/behind-the-sofa', treeSize: 20852163, rootHash: root };
    // The body of the example in c2sp.org/tlog-checkpoint.
    const text = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
    assert.equal(formatCheckpoint(cp), text);
    assert.deepEqual(parseCheckpoint(text), cp);
    const withExtension = { ...cp, extensions: ['ext one', 'ext two'] };
    assert.deepEqual(parseCheckpoint(formatCheckpoint(withExtension)), withExtension);
  });

  it('refuses malformed bodies', () => {
    const root = EMPTY_TREE_ROOT.toString('base64');
    const bad = [
      `${ORIGIN}\n1\n${root}`,
      `${ORIGIN}\n1\n`,
      `\n1\n${root}\n`,
      `${ORIGIN}\n01\n${root}\n`,
      `${ORIGIN}\n-1\n${root}\n`,
      `${ORIGIN}\n1.0\n${root}\n`,
      `${ORIGIN}\n99999999999999999999\n${root}\n`,
      `${ORIGIN}\n1\n${root.slice(0, -1)}\n`,
      `${ORIGIN}\n1\n${Buffer.alloc(31).toString('base64')}\n`,
      `${ORIGIN}\n1\n${root}\n\n`,
    ];
    for (const text of bad) assert.throws(() => parseCheckpoint(text), isLedgerError('checkpoint_malformed'), JSON.stringify(text));
    assert.throws(() => formatCheckpoint({ origin: 'a\nb', treeSize: 1, rootHash: EMPTY_TREE_ROOT }), isLedgerError('checkpoint_malformed'));
    assert.throws(() => formatCheckpoint({ origin: ORIGIN, treeSize: 1, rootHash: EMPTY_TREE_ROOT, extensions: [''] }), isLedgerError('checkpoint_malformed'));
  });

  it('round-trips a signed checkpoint of a real log, and pins the exact bytes for a fixed key', async () => {
    const log = await tenantLog(37);
    const signer = fixedSigner(ORIGIN, 7);
    const cp: Checkpoint = { origin: ORIGIN, treeSize: log.size, rootHash: log.root() };
    const note = signCheckpoint(cp, signer);
    const lines = note.split('\n');
    assert.equal(lines[0], ORIGIN);
    assert.equal(lines[1], '37');
    assert.equal(lines[2], log.root().toString('base64'));
    assert.equal(lines[3], '');
    assert.match(lines[4] as string, new RegExp(`^— ${ORIGIN} [A-Za-z0-9+/]{91}=$`));
    const blob = Buffer.from((lines[4] as string).split(' ')[2] as string, 'base64');
    assert.equal(blob.length, 68);
    assert.equal(blob.readUInt32BE(0), signer.keyId);
    const verified = verifyCheckpoint(note, [parseVerifierKey(formatVerifierKey(signer))], { origin: ORIGIN });
    assert.deepEqual(verified.checkpoint, cp);
    // Ed25519 is deterministic: the same key and checkpoint give the same note.
    assert.equal(signCheckpoint(cp, fixedSigner(ORIGIN, 7)), note);
  });

  it('fails verification when any single byte of the signed checkpoint changes', async () => {
    const log = await tenantLog(12);
    const signer = fixedSigner(ORIGIN, 9);
    const note = Buffer.from(signCheckpoint({ origin: ORIGIN, treeSize: log.size, rootHash: log.root() }, signer));
    const verifiers = [verifierOf(signer)];
    verifyCheckpoint(note, verifiers, { origin: ORIGIN });
    for (let i = 0; i < note.length; i++) {
      for (const mask of [0x01, 0x20, 0x80]) {
        const tampered = Buffer.from(note);
        tampered[i] = (tampered[i] as number) ^ mask;
        assert.throws(() => verifyCheckpoint(tampered, verifiers, { origin: ORIGIN }), LedgerError, `byte ${i} ^ ${mask}`);
      }
    }
    // Removing or adding a byte fails too.
    for (let i = 0; i < note.length; i++) {
      const shorter = Buffer.concat([note.subarray(0, i), note.subarray(i + 1)]);
      assert.throws(() => verifyCheckpoint(shorter, verifiers, { origin: ORIGIN }), LedgerError, `deleted byte ${i}`);
    }
  });

  it('verifies across a key rotation and names unknown keys', async () => {
    const log = await tenantLog(5);
    const oldKey = createNoteSigner(ORIGIN, generateEd25519KeyPair().privateKey);
    const newKey = createNoteSigner(ORIGIN, generateEd25519KeyPair().privateKey);
    assert.notEqual(oldKey.keyId, newKey.keyId);
    const cp = { origin: ORIGIN, treeSize: log.size, rootHash: log.root() };
    const trusted = [verifierOf(newKey), verifierOf(oldKey)];
    const signedByOld = signCheckpoint(cp, oldKey);
    const signedByNew = signCheckpoint(cp, newKey);
    const signedByBoth = signCheckpoint(cp, [newKey, oldKey]);
    assert.deepEqual(
      verifyCheckpoint(signedByOld, trusted).verifiedBy.map((v) => v.keyId),
      [oldKey.keyId],
    );
    assert.deepEqual(
      verifyCheckpoint(signedByNew, trusted).verifiedBy.map((v) => v.keyId),
      [newKey.keyId],
    );
    assert.equal(verifyCheckpoint(signedByBoth, trusted).verifiedBy.length, 2);
    // A verifier that only knows the new key still accepts a note co-signed during the rotation.
    assert.equal(verifyCheckpoint(signedByBoth, [verifierOf(newKey)]).verifiedBy.length, 1);
    // One that only knows the new key refuses an old-key-only note, naming the key it saw.
    assert.throws(
      () => verifyCheckpoint(signedByOld, [verifierOf(newKey)]),
      (err: unknown) =>
        err instanceof LedgerError && err.code === 'note_unverified' && err.message.includes(`${ORIGIN}+${oldKey.keyId.toString(16).padStart(8, '0')}`),
    );
  });

  it('refuses a checkpoint of another log', async () => {
    const signer = fixedSigner('frostgate.test/ledger-key', 3);
    const note = signCheckpoint({ origin: 'frostgate.test/ledger/tenant-b', treeSize: 0, rootHash: EMPTY_TREE_ROOT }, signer);
    assert.throws(() => verifyCheckpoint(note, [verifierOf(signer)], { origin: ORIGIN }), isLedgerError('checkpoint_origin_mismatch'));
    assert.equal(verifyCheckpoint(note, [verifierOf(signer)]).checkpoint.treeSize, 0);
  });

  it('proves consistency between two signed checkpoints, and not after a history rewrite', async () => {
    const signer = fixedSigner(ORIGIN, 11);
    const verifiers = [verifierOf(signer)];
    const log = await tenantLog(20);
    const oldNote = signCheckpoint({ origin: ORIGIN, treeSize: log.size, rootHash: log.root() }, signer);
    for (let i = 20; i < 55; i++) await log.append(recordLeafHash({ decision_id: `dec_${i}`, tenant_id: 'tenant-a', score: i / 10 }));
    const newNote = signCheckpoint({ origin: ORIGIN, treeSize: log.size, rootHash: log.root() }, signer);
    const older = verifyCheckpoint(oldNote, verifiers, { origin: ORIGIN }).checkpoint;
    const newer = verifyCheckpoint(newNote, verifiers, { origin: ORIGIN }).checkpoint;
    verifyConsistency({
      firstSize: older.treeSize,
      secondSize: newer.treeSize,
      firstRoot: older.rootHash,
      secondRoot: newer.rootHash,
      proof: await log.consistencyProof(older.treeSize, newer.treeSize),
    });

    // Rewrite record 3 and re-sign: the new checkpoint verifies on its own, but not as a successor.
    const forged = await MerkleLog.open(new InMemoryMerkleNodeStore());
    for (let i = 0; i < 55; i++) {
      await forged.append(recordLeafHash({ decision_id: `dec_${i}`, tenant_id: 'tenant-a', score: i === 3 ? 0 : i / 10 }));
    }
    const forgedNote = signCheckpoint({ origin: ORIGIN, treeSize: forged.size, rootHash: forged.root() }, signer);
    const forgedCp = verifyCheckpoint(forgedNote, verifiers).checkpoint;
    assert.throws(
      () =>
        verifyConsistency({
          firstSize: older.treeSize,
          secondSize: forgedCp.treeSize,
          firstRoot: older.rootHash,
          secondRoot: forgedCp.rootHash,
          proof: [],
        }),
      isLedgerError('merkle_proof_invalid'),
    );
    const forgedProof = await forged.consistencyProof(older.treeSize, forgedCp.treeSize);
    assert.throws(
      () =>
        verifyConsistency({
          firstSize: older.treeSize,
          secondSize: forgedCp.treeSize,
          firstRoot: older.rootHash,
          secondRoot: forgedCp.rootHash,
          proof: forgedProof,
        }),
      isLedgerError('merkle_proof_invalid'),
    );
  });
});
