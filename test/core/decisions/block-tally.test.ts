import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BlockTally, TALLY_RETAIN_MS, type TalliedBlock } from '../../../src/core/decisions/block-tally.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const block = (index: number, occurredS: number, durationS: number): TalliedBlock => ({
  index,
  occurredMs: NOW + occurredS * 1000,
  untilMs: NOW + (occurredS + durationS) * 1000,
});

/** The counts the database queries gave, over a plain list: the tally must agree with it. */
function naive(blocks: readonly TalliedBlock[], size: number) {
  const below = blocks.filter((b) => b.index < size);
  return {
    activeAt: (atMs: number) => below.filter((b) => b.untilMs > atMs).length,
    appliedIn: (sinceMs: number, atMs: number) => below.filter((b) => b.occurredMs > sinceMs && b.occurredMs <= atMs).length,
  };
}

describe('BlockTally', () => {
  it('agrees with counting every block, for any prefix of the log it holds', () => {
    // Pseudo-random but fixed: blocks at scattered indices, times and durations.
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const blocks: TalliedBlock[] = [];
    for (let i = 0; i < 2000; i++) if (rand(3) === 0) blocks.push(block(i, rand(600) - 300, 1 + rand(900)));
    const tally = BlockTally.loaded(
      1000,
      NOW - TALLY_RETAIN_MS,
      blocks.filter((b) => b.index < 1000),
      NOW,
    );
    tally.advance(
      1000,
      2000,
      blocks.filter((b) => b.index >= 1000),
    );
    assert.equal(tally.synced, 2000);
    for (const size of [2000, 1990, 1950, 1500]) {
      const want = naive(blocks, size);
      for (let k = 0; k < 50; k++) {
        const at = NOW + (rand(1400) - 400) * 1000;
        const since = at - rand(120) * 1000;
        assert.equal(tally.activeAt(size, at), want.activeAt(at), `active at size ${size}`);
        assert.equal(tally.appliedIn(size, since, at), want.appliedIn(since, at), `applied at size ${size}`);
      }
    }
  });

  it('cannot tell beyond what it holds: past its horizon, or above the size it is synced to', () => {
    const tally = BlockTally.loaded(10, NOW - TALLY_RETAIN_MS, [block(3, 0, 60)], NOW);
    assert.equal(tally.activeAt(11, NOW), undefined, 'not synced to 11');
    assert.equal(tally.activeAt(10, NOW - TALLY_RETAIN_MS - 1), undefined, 'before the horizon');
    assert.equal(tally.appliedIn(10, NOW - TALLY_RETAIN_MS - 1, NOW), undefined, 'window reaching past the horizon');
    assert.equal(tally.activeAt(10, NOW), 1);
  });

  it('adds each range once and ignores one that leaves a gap', () => {
    const tally = BlockTally.loaded(5, NOW - TALLY_RETAIN_MS, [block(1, 0, 60)], NOW);
    tally.advance(7, 9, [block(8, 0, 60)]);
    assert.equal(tally.synced, 5, 'a gap [5, 7) is not skipped');
    tally.advance(5, 9, [block(6, 0, 60), block(8, 0, 60)]);
    tally.advance(5, 9, [block(6, 0, 60), block(8, 0, 60)]);
    tally.advance(3, 12, [block(6, 0, 60), block(8, 0, 60), block(11, 0, 60)]);
    assert.equal(tally.synced, 12);
    assert.equal(tally.activeAt(12, NOW), 4);
    assert.equal(tally.size, 4);
  });

  it('drops blocks that ended before its retention and moves its horizon', () => {
    const tally = BlockTally.loaded(3, NOW - TALLY_RETAIN_MS, [block(0, 0, 10), block(1, 0, 7200), block(2, 100, 10)], NOW);
    const later = NOW + 2 * 3600_000;
    tally.prune(later);
    assert.equal(tally.size, 1);
    assert.equal(tally.horizonMs, later - TALLY_RETAIN_MS);
    assert.equal(tally.activeAt(3, later - 60_000), 1);
    assert.equal(tally.activeAt(3, NOW), undefined);
  });
});
