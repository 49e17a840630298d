import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LedgerError } from '../../src/ledger/errors.js';
import { EMPTY_TREE_ROOT, hashLeaf } from '../../src/ledger/hash.js';
import { MerkleLog } from '../../src/ledger/merkle.js';
import { InMemoryMerkleNodeStore } from '../../src/ledger/node-store.js';
import { verifyConsistency, verifyInclusion } from '../../src/ledger/proof-verify.js';

/** Flips bits of one byte in place (a tampered proof element). */
function flipBit(buf: Buffer, byte: number, mask: number): void {
  buf.writeUInt8(buf.readUInt8(byte) ^ mask, byte);
}

/**
 * Published RFC 6962 test data, as used by github.com/transparency-dev/merkle (proof/verify_test.go)
 * and certificate-transparency-go: eight leaves, the roots of trees of size 1..8, and known proofs.
 */
const h = (hex: string): Buffer => Buffer.from(hex, 'hex');
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(h);
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(h);
/** {leaf index (0-based), tree size, proof}. */
const INCLUSION: { index: number; size: number; proof: string[] }[] = [
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];
const CONSISTENCY: { first: number; second: number; proof: string[] }[] = [
  {
    first: 1,
    second: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    first: 6,
    second: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    first: 2,
    second: 5,
    proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'],
  },
  {
    first: 6,
    second: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

const SOME_HASH = h('abacaba000000000000000000000000000000000000000000060061e00123456');
const isProofError = (err: unknown) => err instanceof LedgerError && err.code === 'merkle_proof_invalid';

async function vectorLog(): Promise<MerkleLog> {
  const log = await MerkleLog.open(new InMemoryMerkleNodeStore());
  for (const leaf of LEAVES) await log.appendData(leaf);
  return log;
}

describe('RFC 6962 test vectors', () => {
  it('computes the published roots for sizes 0..8, live and from stored nodes', async () => {
    assert.equal(EMPTY_TREE_ROOT.toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const log = await MerkleLog.open(new InMemoryMerkleNodeStore());
    assert.deepEqual(log.root(), EMPTY_TREE_ROOT);
    for (const [i, leaf] of LEAVES.entries()) {
      await log.appendData(leaf);
      assert.deepEqual(log.root(), ROOTS[i], `root of size ${i + 1}`);
    }
    for (let size = 1; size <= 8; size++) assert.deepEqual(await log.rootAt(size), ROOTS[size - 1], `rootAt(${size})`);
  });

  it('generates exactly the published inclusion proofs, which verify', async () => {
    const log = await vectorLog();
    for (const v of INCLUSION) {
      const proof = await log.inclusionProof(v.index, v.size);
      assert.deepEqual(
        proof.map((p) => p.toString('hex')),
        v.proof,
        `inclusion ${v.index} in ${v.size}`,
      );
      verifyInclusion({ index: v.index, treeSize: v.size, leafHash: hashLeaf(LEAVES[v.index] as Buffer), proof, root: ROOTS[v.size - 1] as Buffer });
    }
  });

  it('generates exactly the published consistency proofs, which verify', async () => {
    const log = await vectorLog();
    for (const v of CONSISTENCY) {
      const proof = await log.consistencyProof(v.first, v.second);
      assert.deepEqual(
        proof.map((p) => p.toString('hex')),
        v.proof,
        `consistency ${v.first} -> ${v.second}`,
      );
      verifyConsistency({
        firstSize: v.first,
        secondSize: v.second,
        firstRoot: ROOTS[v.first - 1] as Buffer,
        secondRoot: ROOTS[v.second - 1] as Buffer,
        proof,
      });
    }
  });

  it('rejects every corruption of the published inclusion proofs (transparency-dev probes)', () => {
    for (const v of INCLUSION) {
      const proof = v.proof.map(h);
      const root = ROOTS[v.size - 1] as Buffer;
      const leafHash = hashLeaf(LEAVES[v.index] as Buffer);
      const probes: { desc: string; index: number; size: number; leaf: Buffer; root: Buffer; proof: Buffer[] }[] = [
        { desc: 'index - 1', index: v.index - 1, size: v.size, leaf: leafHash, root, proof },
        { desc: 'index + 1', index: v.index + 1, size: v.size, leaf: leafHash, root, proof },
        { desc: 'index ^ 2', index: v.index ^ 2, size: v.size, leaf: leafHash, root, proof },
        { desc: 'size * 2', index: v.index, size: v.size * 2, leaf: leafHash, root, proof },
        { desc: 'size / 2', index: v.index, size: Math.floor(v.size / 2), leaf: leafHash, root, proof },
        { desc: 'wrong leaf', index: v.index, size: v.size, leaf: hashLeaf(Buffer.from('WrongLeaf')), root, proof },
        { desc: 'empty root', index: v.index, size: v.size, leaf: leafHash, root: EMPTY_TREE_ROOT, proof },
        { desc: 'random root', index: v.index, size: v.size, leaf: leafHash, root: SOME_HASH, proof },
        { desc: 'trailing root', index: v.index, size: v.size, leaf: leafHash, root, proof: [...proof, root] },
        { desc: 'preceding root', index: v.index, size: v.size, leaf: leafHash, root, proof: [root, ...proof] },
        { desc: 'removed component', index: v.index, size: v.size, leaf: leafHash, root, proof: proof.slice(0, -1) },
      ];
      proof.forEach((_, i) => {
        const flipped = proof.map((p) => Buffer.from(p));
        flipBit(flipped[i] as Buffer, 0, 8);
        probes.push({ desc: `flipped proof[${i}]`, index: v.index, size: v.size, leaf: leafHash, root, proof: flipped });
      });
      if (proof.length > 1) {
        probes.push({
          desc: 'inserted component',
          index: v.index,
          size: v.size,
          leaf: leafHash,
          root,
          proof: [proof[0] as Buffer, SOME_HASH, ...proof.slice(1)],
        });
      }
      for (const p of probes) {
        assert.throws(
          () => verifyInclusion({ index: p.index, treeSize: p.size, leafHash: p.leaf, proof: p.proof, root: p.root }),
          isProofError,
          `${v.index}/${v.size}: ${p.desc}`,
        );
      }
    }
  });

  it('rejects every corruption of the published consistency proofs (transparency-dev probes)', () => {
    for (const v of CONSISTENCY) {
      const proof = v.proof.map(h);
      const root1 = ROOTS[v.first - 1] as Buffer;
      const root2 = ROOTS[v.second - 1] as Buffer;
      const probes: { desc: string; first: number; second: number; root1: Buffer; root2: Buffer; proof: Buffer[] }[] = [
        { desc: 'first - 1', first: v.first - 1, second: v.second, root1, root2, proof },
        { desc: 'first + 1', first: v.first + 1, second: v.second, root1, root2, proof },
        { desc: 'first ^ 2', first: v.first ^ 2, second: v.second, root1, root2, proof },
        { desc: 'second * 2', first: v.first, second: v.second * 2, root1, root2, proof },
        { desc: 'second / 2', first: v.first, second: Math.floor(v.second / 2), root1, root2, proof },
        { desc: 'wrong root1', first: v.first, second: v.second, root1: SOME_HASH, root2, proof },
        { desc: 'wrong root2', first: v.first, second: v.second, root1, root2: SOME_HASH, proof },
        { desc: 'swapped roots', first: v.first, second: v.second, root1: root2, root2: root1, proof },
        { desc: 'empty proof', first: v.first, second: v.second, root1, root2, proof: [] },
        { desc: 'trailing root1', first: v.first, second: v.second, root1, root2, proof: [...proof, root1] },
        { desc: 'trailing root2', first: v.first, second: v.second, root1, root2, proof: [...proof, root2] },
        { desc: 'preceding root1', first: v.first, second: v.second, root1, root2, proof: [root1, ...proof] },
        { desc: 'preceding root2', first: v.first, second: v.second, root1, root2, proof: [root2, ...proof] },
        { desc: 'preceding proof[0]', first: v.first, second: v.second, root1, root2, proof: [proof[0] as Buffer, ...proof] },
        { desc: 'truncated proof', first: v.first, second: v.second, root1, root2, proof: proof.slice(0, -1) },
      ];
      proof.forEach((_, i) => {
        const flipped = proof.map((p) => Buffer.from(p));
        flipBit(flipped[i] as Buffer, 0, 16);
        probes.push({ desc: `flipped proof[${i}]`, first: v.first, second: v.second, root1, root2, proof: flipped });
      });
      for (const p of probes) {
        assert.throws(
          () => verifyConsistency({ firstSize: p.first, secondSize: p.second, firstRoot: p.root1, secondRoot: p.root2, proof: p.proof }),
          isProofError,
          `${v.first}->${v.second}: ${p.desc}`,
        );
      }
    }
  });

  it('handles the trivial consistency cases strictly', () => {
    const [r1, r2] = [ROOTS[0] as Buffer, ROOTS[1] as Buffer];
    verifyConsistency({ firstSize: 0, secondSize: 0, firstRoot: EMPTY_TREE_ROOT, secondRoot: EMPTY_TREE_ROOT, proof: [] });
    verifyConsistency({ firstSize: 0, secondSize: 2, firstRoot: EMPTY_TREE_ROOT, secondRoot: r2, proof: [] });
    verifyConsistency({ firstSize: 1, secondSize: 1, firstRoot: r1, secondRoot: r1, proof: [] });
    const bad = [
      { firstSize: 1, secondSize: 1, firstRoot: r1, secondRoot: r2, proof: [] },
      { firstSize: 1, secondSize: 1, firstRoot: r1, secondRoot: r1, proof: [EMPTY_TREE_ROOT] },
      { firstSize: 0, secondSize: 2, firstRoot: r1, secondRoot: r2, proof: [] },
      { firstSize: 0, secondSize: 2, firstRoot: EMPTY_TREE_ROOT, secondRoot: r2, proof: [EMPTY_TREE_ROOT] },
      { firstSize: 2, secondSize: 1, firstRoot: r2, secondRoot: r1, proof: [] },
      { firstSize: 1, secondSize: 2, firstRoot: r1, secondRoot: r2, proof: [] },
      { firstSize: 1, secondSize: 2, firstRoot: r1.subarray(1), secondRoot: r2, proof: [h(INCLUSION[0]!.proof[0]!)] },
    ];
    for (const claim of bad) assert.throws(() => verifyConsistency(claim), isProofError, JSON.stringify([claim.firstSize, claim.secondSize]));
  });

  it('rejects out-of-range and malformed inclusion claims', () => {
    const leaf = hashLeaf(Buffer.from('data'));
    verifyInclusion({ index: 0, treeSize: 1, leafHash: leaf, proof: [], root: leaf });
    const bad = [
      { index: 0, treeSize: 0, leafHash: leaf, proof: [], root: leaf },
      { index: 1, treeSize: 1, leafHash: leaf, proof: [], root: leaf },
      { index: 0, treeSize: 1, leafHash: Buffer.alloc(0), proof: [], root: leaf },
      { index: 0, treeSize: 1, leafHash: leaf, proof: [], root: Buffer.alloc(0) },
      { index: -1, treeSize: 1, leafHash: leaf, proof: [], root: leaf },
      { index: 0.5, treeSize: 1, leafHash: leaf, proof: [], root: leaf },
      { index: 0, treeSize: 2, leafHash: leaf, proof: [Buffer.alloc(31)], root: leaf },
    ];
    for (const claim of bad) assert.throws(() => verifyInclusion(claim), isProofError, JSON.stringify([claim.index, claim.treeSize]));
  });
});
