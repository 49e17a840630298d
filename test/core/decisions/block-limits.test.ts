import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DecisionService, type DecisionRecord } from '../../../src/core/decisions/service.js';
import { compileContent, defaultContent } from '../../../src/core/governance/kinds.js';
import type { ActiveVersions } from '../../../src/core/governance/active.js';
import type { Doctrine } from '../../../src/core/engine/doctrine.js';
import type { GovernedKind } from '../../../src/platform/db/schema.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

/**
 * The doctrine's caps count every applied block once. Group commit builds a group on the one still
 * being written (its blocks are not in the database yet); the blocks of the groups before that one
 * are, and must not be counted again (production run: 10,000 denylisted hits 310 ms apart, at most
 * 194 in any 60 s against a cap of 200, had 1,141 refused by blocks_per_window).
 */
describe('block limits under pipelined group commits', () => {
  let t: TestApp;
  const MAX_ACTIVE = 300;
  const SPACING_MS = 310;

  before(async () => {
    t = await startTestApp({ db: 'postgres' });
  });
  after(async () => {
    await t?.close();
  });

  /** The default ruleset; the default doctrine with max_active_blocks lowered so the test stays small. */
  function serviceWithCaps(): DecisionService {
    const base = defaultContent('doctrine');
    const doctrine = { ...(base.source as Doctrine), version: 'caps-test', max_active_blocks: MAX_ACTIVE, blocks_per_window: { window_s: 60, max: 200 } };
    const active: Pick<ActiveVersions, 'get'> = {
      get: (async (tenantId: string, kind: GovernedKind) =>
        kind === 'doctrine'
          ? { version: doctrine.version, content: compileContent('doctrine', doctrine), changeId: null }
          : t.governance.active.get(tenantId, kind)) as ActiveVersions['get'],
    };
    return new DecisionService(t.platform.db, active, undefined);
  }

  /** Denylisted hits (240.0.0.0/4), one address each, SPACING_MS apart, starting `startMs`. */
  const hits = (n: number, startMs: number, tag: string) =>
    Array.from({ length: n }, (_, i) => ({
      event: {
        event_id: `${tag}-${i}`,
        source: 'fw',
        event_type: 'net.flow',
        occurred_at: new Date(startMs + i * SPACING_MS).toISOString(),
        payload: { src_ip: `240.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
      },
    }));

  /** Decides in chunks the way /ingest does: chunk k+1 is prepared while chunk k is written. */
  async function decidePipelined(service: DecisionService, tenant: string, inputs: ReturnType<typeof hits>, chunk: number): Promise<DecisionRecord[]> {
    const writes: Array<Promise<DecisionRecord[]>> = [];
    for (let start = 0; start < inputs.length; start += chunk) {
      const staged = service.decideStaged(tenant, inputs.slice(start, start + chunk), 'ingest');
      writes.push(staged.done);
      await staged.prepared;
    }
    return (await Promise.all(writes)).flat();
  }

  const gates = (records: readonly DecisionRecord[]) => {
    const count = new Map<string, number>();
    for (const r of records)
      for (const m of r.mitigations)
        if (m.action === 'block_ip') {
          const gate = m.applied ? 'applied' : (m.gated_by ?? 'unknown');
          count.set(gate, (count.get(gate) ?? 0) + 1);
        }
    return Object.fromEntries(count);
  };

  /**
   * Recent events are counted from the process's tally; events older than the tally's horizon
   * (an hour) from the database: both count the same.
   */
  for (const [name, ageMs] of [
    ['recent events (the in-process tally)', 0],
    ['events older than the tally reaches (the database)', 3 * 3600_000],
  ] as const) {
    it(`counts each block once, ${name}: none refused by blocks_per_window below its rate, max_active_blocks reached exactly`, async () => {
      const tenant = `caps-${ageMs}`;
      await t.auth.store.createTenant(tenant);
      const service = serviceWithCaps();
      // 400 hits 310 ms apart: at most 194 in any 60 s, so the window never refuses; the first 300
      // fill max_active_blocks (each blocks for a day) and the last 100 are refused by it.
      const start = Date.now() - ageMs - 400 * SPACING_MS - 60_000;
      const records = await decidePipelined(service, tenant, hits(400, start, 'caps'), 25);
      assert.equal(records.length, 400);
      assert.deepEqual(gates(records), { applied: MAX_ACTIVE, max_active_blocks: 100 });
      // In ledger order, the applied ones are exactly the first 300.
      const applied = records.map((r) => r.mitigations.some((m) => m.action === 'block_ip' && m.applied));
      assert.deepEqual(applied, [...Array<boolean>(MAX_ACTIVE).fill(true), ...Array<boolean>(100).fill(false)]);

      // Re-sent with new ids (a fresh service: nothing held in the process), every one is refused
      // by max_active_blocks, and the stored count of blocks in force is exactly the cap.
      const again = await decidePipelined(serviceWithCaps(), tenant, hits(50, start + 400 * SPACING_MS, 'caps-again'), 10);
      assert.deepEqual(gates(again), { max_active_blocks: 50 });
      assert.equal((await service.activeBlocks(tenant)).length, MAX_ACTIVE);
    });
  }
});
