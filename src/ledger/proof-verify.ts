import { timingSafeEqual } from 'node:crypto';
import { LedgerError } from './errors.js';
import { EMPTY_TREE_ROOT, HASH_SIZE, hashChildren } from './hash.js';

/**
 * Proof verification, RFC 9162 sections 2.1.3.2 and 2.1.4.2, written step for step from the RFC
 * so it can be read against it. Every failure throws LedgerError `merkle_proof_invalid` with the
 * reason; nothing here returns a boolean a caller could forget to check.
 *
 * "Right-shift" of sizes up to 2^53 is done with division, never `>>` (32-bit in JavaScript).
 */

export interface InclusionClaim {
  readonly index: number;
  readonly treeSize: number;
  /** hashLeaf(entry). */
  readonly leafHash: Uint8Array;
  readonly proof: readonly Uint8Array[];
  readonly root: Uint8Array;
}

export interface ConsistencyClaim {
  readonly firstSize: number;
  readonly secondSize: number;
  readonly firstRoot: Uint8Array;
  readonly secondRoot: Uint8Array;
  readonly proof: readonly Uint8Array[];
}

function invalid(message: string): LedgerError {
  return new LedgerError('merkle_proof_invalid', message);
}

function checkSize(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(`${what} must be an integer in [0, 2^53), got ${value}`);
}

function checkHash(hash: Uint8Array, what: string): void {
  if (hash.length !== HASH_SIZE) throw invalid(`${what} must be ${HASH_SIZE} bytes, got ${hash.length}`);
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const isOdd = (n: number): boolean => n % 2 === 1;
const shift = (n: number): number => Math.floor(n / 2);

/** The root an inclusion proof leads to (RFC 9162 section 2.1.3.2 steps 1-5 without the final compare). */
export function rootFromInclusionProof(claim: Omit<InclusionClaim, 'root'>): Buffer {
  const { index, treeSize, leafHash, proof } = claim;
  checkSize(index, 'leaf index');
  checkSize(treeSize, 'tree size');
  checkHash(leafHash, 'leaf hash');
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  // 1. leaf_index must be below tree_size.
  if (index >= treeSize) throw invalid(`leaf index ${index} is not in a tree of ${treeSize} leaves`);
  // 2. fn = leaf_index, sn = tree_size - 1.  3. r = hash.
  let fn = index;
  let sn = treeSize - 1;
  let r: Buffer = Buffer.from(leafHash);
  // 4. For each p in the path:
  for (const p of proof) {
    // a. sn = 0 means the proof is longer than the path: fail.
    if (sn === 0) throw invalid('inclusion proof is longer than the path for this index and size');
    // b.
    if (isOdd(fn) || fn === sn) {
      r = hashChildren(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = shift(fn);
          sn = shift(sn);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    // c.
    fn = shift(fn);
    sn = shift(sn);
  }
  // 5. sn must be 0 (the proof is not too short).
  if (sn !== 0) throw invalid('inclusion proof is shorter than the path for this index and size');
  return r;
}

/** Throws unless `proof` proves leaf `leafHash` at `index` in the tree of `treeSize` with `root`. */
export function verifyInclusion(claim: InclusionClaim): void {
  checkHash(claim.root, 'root');
  const computed = rootFromInclusionProof(claim);
  if (!sameHash(computed, claim.root)) {
    throw invalid(`inclusion proof for index ${claim.index} does not lead to the root of the tree of ${claim.treeSize} leaves`);
  }
}

/**
 * Throws unless `proof` proves that the tree of `secondSize` leaves with `secondRoot` extends the
 * tree of `firstSize` leaves with `firstRoot` (RFC 9162 section 2.1.4.2). Trivial cases: equal
 * sizes need equal roots and an empty proof; a first size of 0 needs the empty-tree root and an
 * empty proof.
 */
export function verifyConsistency(claim: ConsistencyClaim): void {
  const { firstSize, secondSize, firstRoot, secondRoot, proof } = claim;
  checkSize(firstSize, 'first tree size');
  checkSize(secondSize, 'second tree size');
  checkHash(firstRoot, 'first root');
  checkHash(secondRoot, 'second root');
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  if (firstSize > secondSize) throw invalid(`first tree size ${firstSize} is larger than second tree size ${secondSize}`);
  if (firstSize === secondSize) {
    if (proof.length !== 0) throw invalid('consistency proof between equal sizes must be empty');
    if (!sameHash(firstRoot, secondRoot)) throw invalid(`two different roots for the same tree size ${firstSize}`);
    return;
  }
  if (firstSize === 0) {
    if (proof.length !== 0) throw invalid('consistency proof from the empty tree must be empty');
    if (!sameHash(firstRoot, EMPTY_TREE_ROOT)) throw invalid('first root is not the empty-tree root');
    return;
  }
  // 1. An empty proof cannot prove anything for 0 < first < second.
  if (proof.length === 0) throw invalid('consistency proof is empty');
  // 2. If first is an exact power of two, the old root is the first node of the path.
  const path: Uint8Array[] = isPowerOfTwo(firstSize) ? [firstRoot, ...proof] : [...proof];
  // 3. fn = first - 1, sn = second - 1.
  let fn = firstSize - 1;
  let sn = secondSize - 1;
  // 4. Skip the levels where the old tree's last leaf is a right child.
  while (isOdd(fn)) {
    fn = shift(fn);
    sn = shift(sn);
  }
  // 5. fr = sr = c[0].
  let fr: Buffer = Buffer.from(path[0] as Uint8Array);
  let sr: Buffer = fr;
  // 6. For each subsequent c.
  for (const c of path.slice(1)) {
    // a.
    if (sn === 0) throw invalid('consistency proof is longer than needed for these sizes');
    // b.
    if (isOdd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = shift(fn);
          sn = shift(sn);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    // c.
    fn = shift(fn);
    sn = shift(sn);
  }
  // 7. Both roots reproduced and the path fully consumed.
  if (sn !== 0) throw invalid('consistency proof is shorter than needed for these sizes');
  if (!sameHash(fr, firstRoot)) throw invalid(`consistency proof does not reproduce the root of the tree of ${firstSize} leaves`);
  if (!sameHash(sr, secondRoot)) throw invalid(`consistency proof does not reproduce the root of the tree of ${secondSize} leaves`);
}

function isPowerOfTwo(n: number): boolean {
  let v = n;
  while (v > 1 && v % 2 === 0) v /= 2;
  return v === 1;
}
