import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LedgerError } from '../../src/ledger/errors.js';
import { hashLeaf } from '../../src/ledger/hash.js';
import { consistencyProof, inclusionProof, MerkleLog, rootAt } from '../../src/ledger/merkle.js';
import { InMemoryMerkleNodeStore } from '../../src/ledger/node-store.js';
import { verifyConsistency, verifyInclusion } from '../../src/ledger/proof-verify.js';
import { ReferenceTree } from './rfc9162-reference.js';

/** Flips bits of one byte in place (a tampered proof element). */
function flipBit(buf: Buffer, byte: number, mask: number): void {
  buf.writeUInt8(buf.readUInt8(byte) ^ mask, byte);
}

const MAX_SIZE = 300;
const ALL_PAIRS_UP_TO = 64;

const entries = Array.from({ length: MAX_SIZE + 20 }, (_, i) => Buffer.from(`entry-${i}`));
const hex = (proof: readonly Buffer[]) => proof.map((p) => p.toString('hex'));
const isProofError = (err: unknown) => err instanceof LedgerError && err.code === 'merkle_proof_invalid';

/** Deterministic xorshift so a failure reproduces. */
function prng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/** Sizes m to check consistency from for a tree of n > ALL_PAIRS_UP_TO leaves. */
function sampleFirstSizes(n: number, random: () => number): number[] {
  const sizes = new Set([0, 1, 2, 3, n - 1, n, Math.floor(n / 2)]);
  for (let p = 1; p < n; p *= 2) {
    sizes.add(p);
    sizes.add(p + 1);
  }
  for (let i = 0; i < 4; i++) sizes.add(1 + Math.floor(random() * (n - 1)));
  return [...sizes].filter((m) => m >= 0 && m <= n);
}

async function buildLog(data: readonly Buffer[]): Promise<MerkleLog> {
  const log = await MerkleLog.open(new InMemoryMerkleNodeStore());
  for (const d of data) await log.appendData(d);
  return log;
}

describe('Merkle log cross-checked against the RFC 9162 recursive definitions', () => {
  const reference = new ReferenceTree(entries);

  it(`agrees on roots, every inclusion proof and consistency proofs for every size 1..${MAX_SIZE}`, async () => {
    const store = new InMemoryMerkleNodeStore();
    const log = await MerkleLog.open(store);
    const random = prng(0x5eed);
    let inclusionCount = 0;
    let consistencyCount = 0;
    for (let n = 1; n <= MAX_SIZE; n++) {
      const appended = await log.appendData(entries[n - 1] as Buffer);
      assert.equal(appended.index, n - 1);
      // The store now holds exactly the nodes completed at size n: proofs must need no others.
      const root = reference.mth(0, n);
      assert.deepEqual(log.root(), root, `root of size ${n}`);
      assert.deepEqual(await rootAt(store, n), root, `rootAt(${n})`);
      for (let m = 0; m < n; m++) {
        const proof = await inclusionProof(store, m, n);
        assert.deepEqual(hex(proof), hex(reference.path(m, 0, n)), `PATH(${m}, D[${n}])`);
        verifyInclusion({ index: m, treeSize: n, leafHash: hashLeaf(entries[m] as Buffer), proof, root });
        inclusionCount++;
      }
      const firstSizes = n <= ALL_PAIRS_UP_TO ? Array.from({ length: n + 1 }, (_, m) => m) : sampleFirstSizes(n, random);
      for (const m of firstSizes) {
        const proof = await consistencyProof(store, m, n);
        const expected = m === 0 || m === n ? [] : reference.proof(m, n);
        assert.deepEqual(hex(proof), hex(expected), `PROOF(${m}, D[${n}])`);
        verifyConsistency({ firstSize: m, secondSize: n, firstRoot: reference.mth(0, m), secondRoot: root, proof });
        consistencyCount++;
      }
    }
    assert.equal(inclusionCount, (MAX_SIZE * (MAX_SIZE + 1)) / 2);
    assert.ok(consistencyCount > 2000);
  });

  it('answers for any past size from a larger store (roots, inclusion, consistency)', async () => {
    const log = await buildLog(entries.slice(0, MAX_SIZE));
    const random = prng(42);
    for (let n = 1; n <= MAX_SIZE; n++) {
      assert.deepEqual(await log.rootAt(n), reference.mth(0, n), `rootAt(${n})`);
    }
    for (let i = 0; i < 400; i++) {
      const n = 1 + Math.floor(random() * MAX_SIZE);
      const m = Math.floor(random() * (n + 1));
      const index = Math.floor(random() * n);
      assert.deepEqual(hex(await log.inclusionProof(index, n)), hex(reference.path(index, 0, n)), `PATH(${index}, D[${n}])`);
      const expected = m === 0 || m === n ? [] : reference.proof(m, n);
      assert.deepEqual(hex(await log.consistencyProof(m, n)), hex(expected), `PROOF(${m}, D[${n}])`);
    }
  });

  it('rejects tampered inclusion proofs, roots, leaves, indices and sizes for every index of sizes 1..64', async () => {
    const log = await buildLog(entries.slice(0, ALL_PAIRS_UP_TO));
    const otherRoot = reference.mth(0, 7);
    for (let n = 1; n <= ALL_PAIRS_UP_TO; n++) {
      const root = reference.mth(0, n);
      for (let m = 0; m < n; m++) {
        const leafHash = hashLeaf(entries[m] as Buffer);
        const proof = await log.inclusionProof(m, n);
        const fail = (claim: Partial<Parameters<typeof verifyInclusion>[0]>, what: string) =>
          assert.throws(() => verifyInclusion({ index: m, treeSize: n, leafHash, proof, root, ...claim }), isProofError, `${m}/${n}: ${what}`);
        fail({ index: m + 1 }, 'index + 1');
        if (m > 0) fail({ index: m - 1 }, 'index - 1');
        // A root does not commit to its size (the signed checkpoint does), so only sizes whose path
        // has another length are guaranteed to fail, as in transparency-dev's probes.
        fail({ treeSize: n * 2 }, 'size * 2');
        if (n > 1) fail({ treeSize: Math.floor(n / 2) }, 'size / 2');
        fail({ leafHash: hashLeaf(entries[m + 1] as Buffer) }, 'other leaf');
        fail({ leafHash: Buffer.from(entries[m] as Buffer) }, 'unprefixed leaf');
        if (n !== 7) fail({ root: otherRoot }, 'other root');
        fail({ proof: [...proof, root] }, 'extra element');
        if (proof.length > 0) fail({ proof: proof.slice(1) }, 'missing element');
        for (let i = 0; i < proof.length; i++) {
          const tampered = proof.map((p) => Buffer.from(p));
          flipBit(tampered[i] as Buffer, 31, 1);
          fail({ proof: tampered }, `flipped bit in proof[${i}]`);
        }
      }
    }
  });

  it('rejects tampered consistency proofs and roots for every pair of sizes up to 64', async () => {
    const log = await buildLog(entries.slice(0, ALL_PAIRS_UP_TO));
    for (let n = 2; n <= ALL_PAIRS_UP_TO; n++) {
      for (let m = 1; m < n; m++) {
        const proof = await log.consistencyProof(m, n);
        const firstRoot = reference.mth(0, m);
        const secondRoot = reference.mth(0, n);
        const fail = (claim: Partial<Parameters<typeof verifyConsistency>[0]>, what: string) =>
          assert.throws(() => verifyConsistency({ firstSize: m, secondSize: n, firstRoot, secondRoot, proof, ...claim }), isProofError, `${m}->${n}: ${what}`);
        fail({ firstRoot: reference.mth(0, m - 1) }, 'first root of another size');
        fail({ secondRoot: reference.mth(0, n - 1) }, 'second root of another size');
        fail({ firstSize: m + 1 === n ? m - 1 : m + 1 }, 'other first size');
        fail({ secondSize: n * 2 }, 'second size * 2');
        fail({ proof: [...proof, secondRoot] }, 'extra element');
        fail({ proof: proof.slice(0, -1) }, 'missing element');
        for (let i = 0; i < proof.length; i++) {
          const tampered = proof.map((p) => Buffer.from(p));
          flipBit(tampered[i] as Buffer, 0, 0x80);
          fail({ proof: tampered }, `flipped bit in proof[${i}]`);
        }
      }
    }
  });

  it('fails a consistency proof after a history rewrite of any old leaf', async () => {
    const oldSize = 40;
    const newSize = 97;
    const honest = await buildLog(entries.slice(0, newSize));
    const oldRoot = await honest.rootAt(oldSize);
    verifyConsistency({
      firstSize: oldSize,
      secondSize: newSize,
      firstRoot: oldRoot,
      secondRoot: honest.root(),
      proof: await honest.consistencyProof(oldSize, newSize),
    });
    for (let changed = 0; changed < oldSize; changed++) {
      const rewritten = entries.slice(0, newSize).map((e, i) => (i === changed ? Buffer.from(`${e.toString()}-rewritten`) : e));
      const forged = await buildLog(rewritten);
      // The forger can only prove consistency with its own history, never with the old checkpoint.
      const proof = await forged.consistencyProof(oldSize, newSize);
      assert.throws(
        () => verifyConsistency({ firstSize: oldSize, secondSize: newSize, firstRoot: oldRoot, secondRoot: forged.root(), proof }),
        isProofError,
        `rewrite of leaf ${changed}`,
      );
      // And the honest leaf is no longer provably in the forged tree.
      const inclusion = await forged.inclusionProof(changed, newSize);
      assert.throws(
        () => verifyInclusion({ index: changed, treeSize: newSize, leafHash: hashLeaf(entries[changed] as Buffer), proof: inclusion, root: forged.root() }),
        isProofError,
      );
    }
  });
});
