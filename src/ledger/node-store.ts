import { LedgerError } from './errors.js';
import { HASH_SIZE } from './hash.js';
import type { NodeId } from './tree-shape.js';

/** A stored perfect-subtree root. Level 0 nodes are the leaf hashes. */
export interface MerkleNode extends NodeId {
  readonly hash: Buffer;
}

/**
 * Read access to the perfect-subtree roots of one log. Node (level L, index i) is the root of the
 * perfect subtree over leaves [i * 2^L, (i + 1) * 2^L); once its last leaf is appended it never
 * changes, so a store holding every node completed at size N can answer for any size <= N.
 *
 * Async so that a database-backed store fits; proof generation asks for all the nodes it needs in
 * one getNodes call, so a SQL store can answer with a single query.
 */
export interface MerkleNodeStore {
  /** Throws LedgerError `merkle_node_missing` when the node is not stored. */
  getNode(level: number, index: number): Promise<Buffer>;
  /** The hashes of `ids`, in the same order; throws `merkle_node_missing` if any is absent. */
  getNodes(ids: readonly NodeId[]): Promise<Buffer[]>;
}

export interface WritableMerkleNodeStore extends MerkleNodeStore {
  /**
   * Stores nodes as returned by an append. Rewriting a node with the same hash is a no-op; with a
   * different hash it throws `merkle_node_conflict` (history is append-only).
   */
  putNodes(nodes: readonly MerkleNode[]): Promise<void>;
}

export function missingNode(level: number, index: number): LedgerError {
  return new LedgerError('merkle_node_missing', `Merkle node (level ${level}, index ${index}) is not stored`);
}

/** One level's nodes, contiguous from index 0, packed into one growable buffer. */
class LevelArray {
  private bytes = Buffer.alloc(HASH_SIZE * 64);
  count = 0;

  get(index: number): Buffer | undefined {
    if (index < 0 || index >= this.count) return undefined;
    const start = index * HASH_SIZE;
    // A copy: callers may keep or mutate it without reaching into the store.
    return Buffer.from(this.bytes.subarray(start, start + HASH_SIZE));
  }

  equals(index: number, hash: Buffer): boolean {
    const start = index * HASH_SIZE;
    return this.bytes.subarray(start, start + HASH_SIZE).equals(hash);
  }

  push(hash: Buffer): void {
    if ((this.count + 1) * HASH_SIZE > this.bytes.length) {
      const grown = Buffer.alloc(this.bytes.length * 2);
      this.bytes.copy(grown, 0, 0, this.count * HASH_SIZE);
      this.bytes = grown;
    }
    hash.copy(this.bytes, this.count * HASH_SIZE);
    this.count++;
  }
}

/**
 * In-memory node store (tests, benchmarks, offline verification). About 2 * 32 bytes per leaf.
 * Each level is written contiguously from index 0, which is how appends produce them; a write
 * that would leave a gap is refused as `merkle_node_missing`.
 */
export class InMemoryMerkleNodeStore implements WritableMerkleNodeStore {
  private readonly levels: LevelArray[] = [];

  async getNode(level: number, index: number): Promise<Buffer> {
    const hash = this.levels[level]?.get(index);
    if (!hash) throw missingNode(level, index);
    return hash;
  }

  async getNodes(ids: readonly NodeId[]): Promise<Buffer[]> {
    return ids.map(({ level, index }) => {
      const hash = this.levels[level]?.get(index);
      if (!hash) throw missingNode(level, index);
      return hash;
    });
  }

  async putNodes(nodes: readonly MerkleNode[]): Promise<void> {
    for (const node of nodes) this.putNode(node);
  }

  /** Number of stored nodes at a level (level 0: the number of leaves). */
  countAt(level: number): number {
    return this.levels[level]?.count ?? 0;
  }

  private putNode({ level, index, hash }: MerkleNode): void {
    if (hash.length !== HASH_SIZE) {
      throw new LedgerError('merkle_range_invalid', `node hash must be ${HASH_SIZE} bytes, got ${hash.length}`);
    }
    while (this.levels.length <= level) this.levels.push(new LevelArray());
    const nodes = this.levels[level] as LevelArray;
    if (index < nodes.count) {
      if (!nodes.equals(index, hash)) {
        throw new LedgerError('merkle_node_conflict', `Merkle node (level ${level}, index ${index}) already stored with another hash`);
      }
      return;
    }
    if (index > nodes.count) throw missingNode(level, nodes.count);
    nodes.push(hash);
  }
}
