import { LedgerError } from './errors.js';

/**
 * Index arithmetic of an RFC 9162 tree, independent of any hash: which perfect subtrees make up
 * a range, and which ranges a proof consists of. Node (level L, index i) is the root of the
 * perfect subtree over leaves [i * 2^L, (i + 1) * 2^L).
 *
 * Sizes and indices are JS numbers up to 2^53 - 1, so this file never uses the 32-bit bitwise
 * operators (`>>`, `&`): they would silently wrap beyond 2^31 leaves.
 */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** One proof element: the root over these contiguous perfect subtrees (largest first). */
export type RangeNodes = readonly NodeId[];

export function assertTreeSize(size: number, what = 'tree size'): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new LedgerError('merkle_range_invalid', `${what} must be an integer in [0, 2^53), got ${size}`);
  }
}

/** The largest power of two strictly below n (n >= 2): the `k` of RFC 9162's recursions. */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The largest power of two at most n (n >= 1), with its exponent. */
function largestPowerOfTwoAtMost(n: number): { size: number; level: number } {
  let size = 1;
  let level = 0;
  while (size * 2 <= n) {
    size *= 2;
    level++;
  }
  return { size, level };
}

/**
 * The perfect subtrees, largest first, whose fold is MTH(D[start:start+count]). Valid for the
 * ranges RFC 9162's recursions produce, whose start is a multiple of a power of two >= count.
 */
export function rangeNodes(start: number, count: number): NodeId[] {
  const nodes: NodeId[] = [];
  let position = start;
  let remaining = count;
  while (remaining > 0) {
    const { size, level } = largestPowerOfTwoAtMost(remaining);
    nodes.push({ level, index: position / size });
    position += size;
    remaining -= size;
  }
  return nodes;
}

/** The frontier of a tree of `size` leaves: the roots of its perfect subtrees, largest first. */
export function frontierIds(size: number): NodeId[] {
  return rangeNodes(0, size);
}

/**
 * PATH(m, D[n]) of RFC 9162 section 2.1.3.1 as ranges, in proof order (leaf level first). The
 * recursion runs top-down; each step contributes the sibling range, so the list is reversed.
 */
export function inclusionProofRanges(index: number, size: number): RangeNodes[] {
  const topDown: RangeNodes[] = [];
  let offset = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = largestPowerOfTwoBelow(n);
    if (m < k) {
      topDown.push(rangeNodes(offset + k, n - k));
      n = k;
    } else {
      topDown.push(rangeNodes(offset, k));
      offset += k;
      m -= k;
      n -= k;
    }
  }
  return topDown.reverse();
}

/**
 * PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 section 2.1.4.1 as ranges, in proof
 * order. Empty for m = 0 and m = n.
 */
export function consistencyProofRanges(first: number, second: number): RangeNodes[] {
  if (first === 0 || first === second) return [];
  const topDown: RangeNodes[] = [];
  let offset = 0;
  let n = second;
  let m = first;
  let isWholeOldTree = true;
  while (m !== n) {
    const k = largestPowerOfTwoBelow(n);
    if (m <= k) {
      topDown.push(rangeNodes(offset + k, n - k));
      n = k;
    } else {
      topDown.push(rangeNodes(offset, k));
      offset += k;
      m -= k;
      n -= k;
      isWholeOldTree = false;
    }
  }
  // SUBPROOF(m, D[m], false) = {MTH(D[m])}: the verifier cannot know this subtree's hash.
  if (!isWholeOldTree) topDown.push(rangeNodes(offset, m));
  return topDown.reverse();
}
