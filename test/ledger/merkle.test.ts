import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LedgerError } from '../../src/ledger/errors.js';
import { EMPTY_TREE_ROOT, hashChildren, hashLeaf } from '../../src/ledger/hash.js';
import { consistencyProof, inclusionProof, MerkleFrontier, MerkleLog, rootAt } from '../../src/ledger/merkle.js';
import { InMemoryMerkleNodeStore, missingNode, type MerkleNodeStore } from '../../src/ledger/node-store.js';
import { verifyConsistency, verifyInclusion } from '../../src/ledger/proof-verify.js';
import { recordLeafHash } from '../../src/ledger/record.js';
import type { NodeId } from '../../src/ledger/tree-shape.js';
import { ReferenceTree } from './rfc9162-reference.js';

const isLedgerError = (code: string) => (err: unknown) => err instanceof LedgerError && err.code === code;
const leaf = (i: number) => hashLeaf(Buffer.from(`leaf-${i}`));

/** Counts reads so tests can check proofs cost O(log n) node reads in one round trip. */
class CountingStore implements MerkleNodeStore {
  calls = 0;
  reads = 0;
  constructor(private readonly inner: MerkleNodeStore) {}
  getNode(level: number, index: number): Promise<Buffer> {
    this.calls++;
    this.reads++;
    return this.inner.getNode(level, index);
  }
  getNodes(ids: readonly NodeId[]): Promise<Buffer[]> {
    this.calls++;
    this.reads += ids.length;
    return this.inner.getNodes(ids);
  }
}

/**
 * A virtual tree of up to 2^52 identical leaves: every node at level L has the same hash, so the
 * store can answer for any index without holding anything. Exercises sizes beyond 2^32 where
 * 32-bit bit operations would silently wrap.
 */
class UniformStore implements MerkleNodeStore {
  private readonly byLevel: Buffer[] = [hashLeaf(Buffer.from('same'))];
  constructor(readonly size: number) {
    for (let l = 1; l <= 53; l++) {
      const below = this.byLevel[l - 1] as Buffer;
      this.byLevel.push(hashChildren(below, below));
    }
  }
  async getNode(level: number, index: number): Promise<Buffer> {
    if ((index + 1) * 2 ** level > this.size) throw missingNode(level, index);
    return this.byLevel[level] as Buffer;
  }
  async getNodes(ids: readonly NodeId[]): Promise<Buffer[]> {
    return Promise.all(ids.map((id) => this.getNode(id.level, id.index)));
  }
}

describe('MerkleFrontier', () => {
  it('returns the completed nodes of each append: 1 + trailing ones of the index, ~2 on average', () => {
    let frontier = MerkleFrontier.EMPTY;
    let total = 0;
    const trailingOnes = (n: number) => {
      let c = 0;
      for (let v = n; v % 2 === 1; v = (v - 1) / 2) c++;
      return c;
    };
    for (let i = 0; i < 1024; i++) {
      const result = frontier.append(leaf(i));
      assert.equal(result.index, i);
      assert.equal(result.nodes.length, 1 + trailingOnes(i));
      assert.deepEqual(result.nodes[0], { level: 0, index: i, hash: leaf(i) });
      total += result.nodes.length;
      frontier = result.frontier;
    }
    assert.equal(total, 2047); // every node of a perfect tree of 1024 leaves, exactly once
    assert.equal(frontier.nodes().length, 1);
  });

  it('is immutable: an append that is never committed leaves the previous frontier usable', () => {
    const base = MerkleFrontier.EMPTY.append(leaf(0)).frontier.append(leaf(1)).frontier;
    const rootBefore = base.root();
    const abandoned = base.append(leaf(2));
    assert.equal(base.size, 2);
    assert.deepEqual(base.root(), rootBefore);
    const committed = base.append(leaf(3));
    assert.notDeepEqual(committed.frontier.root(), abandoned.frontier.root());
    assert.deepEqual(MerkleFrontier.EMPTY.root(), EMPTY_TREE_ROOT);
  });

  it('reloads from a store with popcount(size) reads and continues identically', async () => {
    const store = new InMemoryMerkleNodeStore();
    const log = await MerkleLog.open(store);
    for (let i = 0; i < 45; i++) await log.append(leaf(i));
    const counting = new CountingStore(store);
    const loaded = await MerkleFrontier.load(counting, 45);
    assert.equal(counting.calls, 1);
    assert.equal(counting.reads, 4); // 45 = 32 + 8 + 4 + 1: one perfect subtree per set bit
    assert.deepEqual(loaded.root(), log.root());
    const fromNodes = MerkleFrontier.fromNodes(
      45,
      log.frontier.nodes().map((n) => n.hash),
    );
    assert.deepEqual(fromNodes.append(leaf(45)).frontier.root(), loaded.append(leaf(45)).frontier.root());
  });

  it('fails loudly on a store missing nodes and refuses to rewrite a stored node', async () => {
    const store = new InMemoryMerkleNodeStore();
    const log = await MerkleLog.open(store);
    for (let i = 0; i < 5; i++) await log.append(leaf(i));
    await assert.rejects(MerkleFrontier.load(store, 6), isLedgerError('merkle_node_missing'));
    await assert.rejects(rootAt(store, 9), isLedgerError('merkle_node_missing'));
    await assert.rejects(store.putNodes([{ level: 0, index: 2, hash: leaf(99) }]), isLedgerError('merkle_node_conflict'));
    await store.putNodes([{ level: 0, index: 2, hash: leaf(2) }]); // identical rewrite is a no-op
    await assert.rejects(store.putNodes([{ level: 0, index: 9, hash: leaf(9) }]), isLedgerError('merkle_node_missing'));
    assert.throws(() => MerkleFrontier.EMPTY.append(Buffer.alloc(31)), isLedgerError('merkle_range_invalid'));
    assert.throws(() => MerkleFrontier.fromNodes(3, [leaf(0)]), isLedgerError('merkle_range_invalid'));
  });
});

describe('MerkleLog', () => {
  it('reads O(log n) nodes in a single store call per proof', async () => {
    const store = new InMemoryMerkleNodeStore();
    const log = await MerkleLog.open(store);
    for (let i = 0; i < 1000; i++) await log.append(leaf(i));
    const counting = new CountingStore(store);
    for (const [index, size] of [
      [0, 1000],
      [999, 1000],
      [517, 1000],
      [3, 700],
    ] as const) {
      counting.calls = 0;
      counting.reads = 0;
      await inclusionProof(counting, index, size);
      assert.equal(counting.calls, 1);
      assert.ok(counting.reads <= 2 * Math.ceil(Math.log2(size)), `inclusion ${index}/${size} read ${counting.reads}`);
    }
    counting.calls = 0;
    counting.reads = 0;
    await consistencyProof(counting, 333, 1000);
    assert.equal(counting.calls, 1);
    assert.ok(counting.reads <= 2 * Math.ceil(Math.log2(1000)));
  });

  it('serialises concurrent appends and assigns consecutive indices', async () => {
    const log = await MerkleLog.open(new InMemoryMerkleNodeStore());
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(leaf(i))));
    assert.deepEqual(
      results.map((r) => r.index),
      Array.from({ length: 50 }, (_, i) => i),
    );
    const reference = new ReferenceTree(Array.from({ length: 50 }, (_, i) => Buffer.from(`leaf-${i}`)));
    assert.deepEqual(log.root(), reference.mth(0, 50));
  });

  it('refuses sizes and indices outside the log', async () => {
    const log = await MerkleLog.open(new InMemoryMerkleNodeStore());
    for (let i = 0; i < 4; i++) await log.append(leaf(i));
    await assert.rejects(async () => log.inclusionProof(4, 4), isLedgerError('merkle_range_invalid'));
    await assert.rejects(async () => log.inclusionProof(0, 5), isLedgerError('merkle_range_invalid'));
    await assert.rejects(async () => log.consistencyProof(3, 2), isLedgerError('merkle_range_invalid'));
    await assert.rejects(async () => log.rootAt(-1), isLedgerError('merkle_range_invalid'));
    await assert.rejects(async () => log.rootAt(1.5), isLedgerError('merkle_range_invalid'));
  });

  it('hashes records as leaves of their RFC 8785 canonical JSON', () => {
    assert.deepEqual(recordLeafHash({ b: 1, a: 'x' }), hashLeaf(Buffer.from('{"a":"x","b":1}')));
    assert.deepEqual(recordLeafHash({ a: 'x', b: 1 }), recordLeafHash({ b: 1, a: 'x' }));
  });
});

describe('sizes beyond 2^32 leaves', () => {
  it('generates and verifies inclusion and consistency proofs with exact 53-bit arithmetic', async () => {
    const size = 2 ** 52 + 2 ** 33 + 2 ** 31 + 5;
    const store = new UniformStore(size);
    const root = await rootAt(store, size);
    const leafHash = await store.getNode(0, 0);
    for (const index of [0, 2 ** 32 + 1, 2 ** 52 - 1, 2 ** 52 + 2 ** 33 + 3, size - 1]) {
      const proof = await inclusionProof(store, index, size);
      verifyInclusion({ index, treeSize: size, leafHash, proof, root });
      // A proof for the wrong size of a different shape must not verify.
      assert.throws(() => verifyInclusion({ index, treeSize: Math.floor(size / 2), leafHash, proof, root }), isLedgerError('merkle_proof_invalid'));
    }
    for (const first of [1, 2 ** 31 + 7, 2 ** 32, 2 ** 40 + 1, 2 ** 52 + 1]) {
      const proof = await consistencyProof(store, first, size);
      verifyConsistency({ firstSize: first, secondSize: size, firstRoot: await rootAt(store, first), secondRoot: root, proof });
      assert.throws(
        () => verifyConsistency({ firstSize: first, secondSize: size, firstRoot: root, secondRoot: root, proof }),
        isLedgerError('merkle_proof_invalid'),
      );
    }
  });
});
