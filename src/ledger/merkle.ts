import { LedgerError } from './errors.js';
import { EMPTY_TREE_ROOT, HASH_SIZE, hashChildren, hashLeaf } from './hash.js';
import type { MerkleNode, MerkleNodeStore, WritableMerkleNodeStore } from './node-store.js';
import { assertTreeSize, consistencyProofRanges, frontierIds, inclusionProofRanges, type NodeId, type RangeNodes } from './tree-shape.js';

/**
 * RFC 9162 Merkle log over a MerkleNodeStore: O(log n) appends from a compact frontier, roots at
 * any past size, and inclusion / consistency proof generation with O(log n) node reads.
 */

export interface AppendResult {
  /** The tree after the append; the caller adopts it once `nodes` are durably stored. */
  readonly frontier: MerkleFrontier;
  /** Index of the appended leaf (= tree size before the append). */
  readonly index: number;
  /** Nodes completed by this append, leaf first (1 + trailing ones of `index`; ~2 on average). */
  readonly nodes: readonly MerkleNode[];
}

function assertHash(hash: Uint8Array, what: string): void {
  if (hash.length !== HASH_SIZE) {
    throw new LedgerError('merkle_range_invalid', `${what} must be ${HASH_SIZE} bytes, got ${hash.length}`);
  }
}

/**
 * The roots of the perfect subtrees of a tree (one per set bit of its size): everything an append
 * and the current root need. Immutable, so a failed transaction leaves the previous frontier valid.
 */
export class MerkleFrontier {
  static readonly EMPTY = new MerkleFrontier(0, []);

  /** `byLevel[L]` is the frontier subtree of 2^L leaves, present iff bit L of size is set. */
  private constructor(
    readonly size: number,
    private readonly byLevel: readonly (Buffer | undefined)[],
  ) {}

  /** Rebuilds the frontier of a stored tree of `size` leaves (popcount(size) node reads). */
  static async load(store: MerkleNodeStore, size: number): Promise<MerkleFrontier> {
    assertTreeSize(size);
    const ids = frontierIds(size);
    return MerkleFrontier.fromNodes(size, await store.getNodes(ids));
  }

  /** The frontier from its hashes, largest subtree first (the order of `frontierIds(size)`). */
  static fromNodes(size: number, hashes: readonly Buffer[]): MerkleFrontier {
    assertTreeSize(size);
    const ids = frontierIds(size);
    if (hashes.length !== ids.length) {
      throw new LedgerError('merkle_range_invalid', `a tree of ${size} leaves has ${ids.length} frontier nodes, got ${hashes.length}`);
    }
    const byLevel: (Buffer | undefined)[] = [];
    ids.forEach((id, i) => {
      const hash = hashes[i] as Buffer;
      assertHash(hash, 'frontier node');
      byLevel[id.level] = hash;
    });
    return new MerkleFrontier(size, byLevel);
  }

  /** The frontier nodes, largest subtree first. */
  nodes(): MerkleNode[] {
    return frontierIds(this.size).map((id) => ({ ...id, hash: this.byLevel[id.level] as Buffer }));
  }

  /** MTH of the whole tree: the frontier folded from the smallest subtree up. */
  root(): Buffer {
    let root: Buffer | undefined;
    for (const subtree of this.byLevel) {
      if (subtree) root = root ? hashChildren(subtree, root) : subtree;
    }
    return root ?? EMPTY_TREE_ROOT;
  }

  /** Appends a leaf by its leaf hash (`hashLeaf(data)`), returning the completed nodes. */
  append(leafHash: Buffer): AppendResult {
    assertHash(leafHash, 'leaf hash');
    if (this.size >= Number.MAX_SAFE_INTEGER) throw new LedgerError('merkle_range_invalid', 'tree is full');
    const index = this.size;
    const byLevel = this.byLevel.slice();
    const nodes: MerkleNode[] = [{ level: 0, index, hash: leafHash }];
    let carry = leafHash;
    let level = 0;
    let position = index;
    // Each trailing one bit of the index is a completed left sibling waiting for this subtree.
    while (position % 2 === 1) {
      carry = hashChildren(byLevel[level] as Buffer, carry);
      byLevel[level] = undefined;
      level++;
      position = (position - 1) / 2;
      nodes.push({ level, index: position, hash: carry });
    }
    byLevel[level] = carry;
    return { frontier: new MerkleFrontier(index + 1, byLevel), index, nodes };
  }
}

function foldRange(ids: RangeNodes, hashes: ReadonlyMap<string, Buffer>): Buffer {
  let root: Buffer | undefined;
  for (let i = ids.length - 1; i >= 0; i--) {
    const id = ids[i] as NodeId;
    const hash = hashes.get(`${id.level}:${id.index}`) as Buffer;
    root = root ? hashChildren(hash, root) : hash;
  }
  if (!root) throw new LedgerError('merkle_range_invalid', 'empty range');
  return root;
}

/** Reads every node the ranges need in one getNodes call and folds each range to its root. */
async function resolveRanges(store: MerkleNodeStore, ranges: readonly RangeNodes[]): Promise<Buffer[]> {
  const unique = new Map<string, NodeId>();
  for (const range of ranges) for (const id of range) unique.set(`${id.level}:${id.index}`, id);
  const ids = [...unique.values()];
  const hashes = await store.getNodes(ids);
  const byKey = new Map<string, Buffer>();
  ids.forEach((id, i) => byKey.set(`${id.level}:${id.index}`, hashes[i] as Buffer));
  return ranges.map((range) => foldRange(range, byKey));
}

/** MTH(D[0:treeSize]) for any size the store covers: at most log2(n) + 1 node reads. */
export async function rootAt(store: MerkleNodeStore, treeSize: number): Promise<Buffer> {
  assertTreeSize(treeSize);
  if (treeSize === 0) return EMPTY_TREE_ROOT;
  const [root] = await resolveRanges(store, [frontierIds(treeSize)]);
  return root as Buffer;
}

/** PATH(index, D[treeSize]) (RFC 9162 section 2.1.3.1), leaf level first. */
export async function inclusionProof(store: MerkleNodeStore, index: number, treeSize: number): Promise<Buffer[]> {
  assertTreeSize(treeSize);
  assertTreeSize(index, 'leaf index');
  if (index >= treeSize) {
    throw new LedgerError('merkle_range_invalid', `leaf index ${index} is not in a tree of ${treeSize} leaves`);
  }
  return resolveRanges(store, inclusionProofRanges(index, treeSize));
}

/** PROOF(first, D[second]) (RFC 9162 section 2.1.4.1); empty when first is 0 or equals second. */
export async function consistencyProof(store: MerkleNodeStore, first: number, second: number): Promise<Buffer[]> {
  assertTreeSize(first, 'first tree size');
  assertTreeSize(second, 'second tree size');
  if (first > second) {
    throw new LedgerError('merkle_range_invalid', `first tree size ${first} is larger than second tree size ${second}`);
  }
  return resolveRanges(store, consistencyProofRanges(first, second));
}

/**
 * A log over a writable store that it owns: appends are serialised, and the frontier advances
 * only after the store accepted the nodes. A database-backed ledger instead calls
 * `MerkleFrontier.append` inside its own transaction and inserts the returned nodes there.
 */
export class MerkleLog {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly store: WritableMerkleNodeStore,
    private current: MerkleFrontier,
  ) {}

  /** Opens a log whose store already holds a tree of `size` leaves (0 for a new log). */
  static async open(store: WritableMerkleNodeStore, size = 0): Promise<MerkleLog> {
    return new MerkleLog(store, await MerkleFrontier.load(store, size));
  }

  get size(): number {
    return this.current.size;
  }

  get frontier(): MerkleFrontier {
    return this.current;
  }

  root(): Buffer {
    return this.current.root();
  }

  /** Appends a leaf hash; resolves once its nodes are stored. */
  append(leafHash: Buffer): Promise<AppendResult> {
    const run = this.tail.then(async () => {
      const result = this.current.append(leafHash);
      await this.store.putNodes(result.nodes);
      this.current = result.frontier;
      return result;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Appends raw leaf data (hashed with the 0x00 leaf prefix). */
  appendData(data: Uint8Array): Promise<AppendResult> {
    return this.append(hashLeaf(data));
  }

  rootAt(treeSize: number): Promise<Buffer> {
    this.assertWithinLog(treeSize);
    return rootAt(this.store, treeSize);
  }

  inclusionProof(index: number, treeSize = this.size): Promise<Buffer[]> {
    this.assertWithinLog(treeSize);
    return inclusionProof(this.store, index, treeSize);
  }

  consistencyProof(first: number, second = this.size): Promise<Buffer[]> {
    this.assertWithinLog(second);
    return consistencyProof(this.store, first, second);
  }

  private assertWithinLog(treeSize: number): void {
    assertTreeSize(treeSize);
    if (treeSize > this.current.size) {
      throw new LedgerError('merkle_range_invalid', `tree size ${treeSize} is beyond the log's ${this.current.size} leaves`);
    }
  }
}
