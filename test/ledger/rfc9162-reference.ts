import { createHash } from 'node:crypto';

/**
 * An independent, deliberately naive RFC 9162 implementation for cross-checking: MTH, PATH and
 * PROOF/SUBPROOF written as the RFC's recursive definitions over the list of entries (sections
 * 2.1.1, 2.1.3.1 and 2.1.4.1), sharing no code with src/ledger. MTH results are memoised per
 * range because every recursion reuses them; the entries never change, so the cache is sound.
 */
function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export class ReferenceTree {
  private readonly memo = new Map<string, Buffer>();

  constructor(private readonly entries: readonly Uint8Array[]) {}

  /** MTH(D[start:end]). */
  mth(start: number, end: number): Buffer {
    const key = `${start}:${end}`;
    const cached = this.memo.get(key);
    if (cached) return cached;
    const n = end - start;
    let result: Buffer;
    if (n === 0) result = sha256();
    else if (n === 1) result = sha256(Buffer.from([0]), this.entries[start] as Uint8Array);
    else {
      const k = ReferenceTree.split(n);
      result = sha256(Buffer.from([1]), this.mth(start, start + k), this.mth(start + k, end));
    }
    this.memo.set(key, result);
    return result;
  }

  /** PATH(m, D[start:end]). */
  path(m: number, start: number, end: number): Buffer[] {
    const n = end - start;
    if (n === 1) return [];
    const k = ReferenceTree.split(n);
    if (m < k) return [...this.path(m, start, start + k), this.mth(start + k, end)];
    return [...this.path(m - k, start + k, end), this.mth(start, start + k)];
  }

  /** PROOF(m, D[n]) = SUBPROOF(m, D[n], true). */
  proof(m: number, n: number): Buffer[] {
    return this.subproof(m, 0, n, true);
  }

  private subproof(m: number, start: number, end: number, b: boolean): Buffer[] {
    const n = end - start;
    if (m === n) return b ? [] : [this.mth(start, end)];
    const k = ReferenceTree.split(n);
    if (m <= k) return [...this.subproof(m, start, start + k, b), this.mth(start + k, end)];
    return [...this.subproof(m - k, start + k, end, false), this.mth(start, start + k)];
  }

  /** The largest power of two smaller than n. */
  static split(n: number): number {
    let k = 1;
    while (k < n) k *= 2;
    return k / 2;
  }
}
