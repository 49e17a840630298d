/** A block a decision applied: what the doctrine's caps count. */
export interface TalliedBlock {
  /** Its decision's ledger index. */
  readonly index: number;
  readonly occurredMs: number;
  readonly untilMs: number;
}

/** Blocks whose end is older than this (before `now`) are dropped; counts reaching further back go to the database. */
export const TALLY_RETAIN_MS = 60 * 60 * 1000;
/** How often (at most) the tally drops expired blocks. */
const PRUNE_EVERY_MS = 60 * 1000;

/** Index of the first element of the ascending `a` greater than `x`. */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(a: number[], x: number): void {
  a.splice(upperBound(a, x), 0, x);
}

/**
 * One tenant's applied blocks as of a prefix of its decisions log, held in the process so the
 * doctrine's caps cost two binary searches per event instead of two counting queries whose cost
 * grows with the blocks in force. It holds every block of ledger indices [0, synced) whose end is
 * after `horizonMs`; a count that needs older blocks returns undefined and the caller asks the
 * database. Blocks are added in ledger order, from this process's own commits or read from the
 * database for what other processes appended.
 */
export class BlockTally {
  /** Ends (block_until) and starts (occurred_at) of the held blocks, each ascending. */
  private untils: number[] = [];
  private occurreds: number[] = [];
  /** The held blocks in ledger order (the tail answers "blocks at or after index S"). */
  private byIndex: TalliedBlock[] = [];
  private lastPruneMs: number;

  private constructor(
    /** Every block below this ledger index (and ending after horizonMs) is held. */
    public synced: number,
    public horizonMs: number,
    nowMs: number,
  ) {
    this.lastPruneMs = nowMs;
  }

  /** A tally loaded with the blocks below `size` that end after `horizonMs`. */
  static loaded(size: number, horizonMs: number, blocks: readonly TalliedBlock[], nowMs = Date.now()): BlockTally {
    const tally = new BlockTally(0, horizonMs, nowMs);
    tally.advance(0, size, blocks);
    return tally;
  }

  /**
   * Adds the blocks of ledger indices [from, to), given complete for that range. Ranges already held
   * are skipped; a range that leaves a gap after `synced` is ignored (the next read fills the gap).
   */
  advance(from: number, to: number, blocks: readonly TalliedBlock[]): void {
    if (from > this.synced || to <= this.synced) return;
    const sorted = blocks.filter((b) => b.index >= this.synced && b.untilMs > this.horizonMs).sort((a, b) => a.index - b.index);
    for (const b of sorted) {
      this.byIndex.push(b);
      insertSorted(this.untils, b.untilMs);
      insertSorted(this.occurreds, b.occurredMs);
    }
    this.synced = to;
  }

  /** Blocks below ledger index `size` in force at `atMs` (ending after it); undefined when the tally cannot tell. */
  activeAt(size: number, atMs: number): number | undefined {
    if (size > this.synced || atMs < this.horizonMs) return undefined;
    let n = this.untils.length - upperBound(this.untils, atMs);
    for (let i = this.byIndex.length - 1; i >= 0 && this.byIndex[i]!.index >= size; i--) if (this.byIndex[i]!.untilMs > atMs) n--;
    return n;
  }

  /** Blocks below ledger index `size` applied in (sinceMs, atMs]; undefined when the tally cannot tell. */
  appliedIn(size: number, sinceMs: number, atMs: number): number | undefined {
    if (size > this.synced || sinceMs < this.horizonMs) return undefined;
    let n = upperBound(this.occurreds, atMs) - upperBound(this.occurreds, sinceMs);
    for (let i = this.byIndex.length - 1; i >= 0 && this.byIndex[i]!.index >= size; i--) {
      const o = this.byIndex[i]!.occurredMs;
      if (o > sinceMs && o <= atMs) n--;
    }
    return n;
  }

  /** Drops blocks that ended more than TALLY_RETAIN_MS before `nowMs` (at most once a minute). */
  prune(nowMs = Date.now()): void {
    if (nowMs - this.lastPruneMs < PRUNE_EVERY_MS) return;
    this.lastPruneMs = nowMs;
    const horizon = nowMs - TALLY_RETAIN_MS;
    if (horizon <= this.horizonMs) return;
    this.horizonMs = horizon;
    if (this.untils.length === 0 || this.untils[0]! > horizon) return;
    this.byIndex = this.byIndex.filter((b) => b.untilMs > horizon);
    this.untils = this.byIndex.map((b) => b.untilMs).sort((a, b) => a - b);
    this.occurreds = this.byIndex.map((b) => b.occurredMs).sort((a, b) => a - b);
  }

  get size(): number {
    return this.byIndex.length;
  }
}
