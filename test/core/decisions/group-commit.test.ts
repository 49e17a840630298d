import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { verifierOf } from '../../../src/ledger/note.js';
import { verifyLogFromDatabase } from '../../../src/ledger/verify.js';
import type { DecisionRecord } from '../../../src/core/decisions/service.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../../helpers/postgres.js';

/**
 * Group commit reads a tenant's log without locks and writes only if the log has not moved since:
 * two processes deciding for one tenant at once must interleave their groups into one valid log,
 * re-reading (and re-hashing, re-diffing) whenever the other one appended first.
 */
describe('decision group commit across two processes on one database', () => {
  let pgdb: ThrowawayDatabase;
  const nodes: TestApp[] = [];
  const tenant = 'gc-tenant';

  before(async () => {
    pgdb = await createThrowawayDatabase('fg_gc');
    for (let i = 0; i < 2; i++) nodes.push(await startTestApp({ db: 'postgres', env: { FG_DB_URL: pgdb.url } }));
    await nodes[0]!.auth.store.createTenant(tenant);
  });
  after(async () => {
    for (const n of nodes.reverse()) await n.close();
    await pgdb?.drop();
  });

  let seq = 0;
  /** Failed logins from five sources, so entities recur across groups and nodes. */
  const event = () => {
    seq++;
    return {
      event_id: `gc-${seq}`,
      source: 'sshd',
      event_type: 'auth.failure',
      occurred_at: new Date().toISOString(),
      payload: { service: 'ssh', src_ip: `100.64.9.${seq % 5}`, username: `u${seq}` },
    };
  };

  it("interleaves both processes' groups into one verifiable log, diffing each decision against the one before it", async () => {
    const rounds = 25;
    const perGroup = 8;
    const stored: DecisionRecord[] = [];
    let replay: { event: ReturnType<typeof event>; decisionId: string } | undefined;
    for (let r = 0; r < rounds; r++) {
      // Each group also replays an event decided in the round before: whatever races the group
      // loses, that input still gets its earlier decision back.
      const inputs = nodes.map(() => [...Array.from({ length: perGroup }, () => ({ event: event() })), ...(replay ? [{ event: replay.event }] : [])]);
      const groups = await Promise.all(nodes.map((n, i) => n.decisions.service.decideMany(tenant, inputs[i]!, 'defend')));
      for (const g of groups) {
        if (replay) assert.equal(g.pop()?.decision_id, replay.decisionId, 'a replayed event_id gets its first decision');
        stored.push(...g);
      }
      replay = { event: inputs[0]![0]!.event, decisionId: groups[0]![0]!.decision_id };
    }
    const total = rounds * perGroup * nodes.length;
    assert.equal(stored.length, total);
    assert.deepEqual(
      stored.map((d) => d.ledger_index).sort((a, b) => a - b),
      Array.from({ length: total }, (_, i) => i),
      'every ledger index once, none skipped',
    );

    const conflicts = await Promise.all(
      nodes.map(async (n) => (await n.platform.metrics.registry.getSingleMetric('decision_group_conflicts_total')!.get()).values[0]?.value ?? 0),
    );
    assert.ok(conflicts[0]! + conflicts[1]! > 0, 'the nodes raced: some groups were re-read and written again');

    // Each test node has an ephemeral ledger key, and either one's background checkpointer may have signed.
    const check = await verifyLogFromDatabase(
      nodes[1]!.platform.db,
      tenant,
      'decisions',
      nodes.map((n) => verifierOf(n.ledger.ledger.signingKey.signer)),
    );
    assert.equal(check.ok, true, JSON.stringify(check.problems));
    assert.equal(check.size, total);

    // Each stored decision's diff was computed against the previous decision (in ledger order)
    // about the same entity, whichever node made that one.
    const rows = await nodes[0]!.platform.db.withTenant(tenant, (tx) =>
      sql<{ entity: string; score: number; decision_diff: { first: boolean; score: { from: number | null; to: number } | null } }>`
        SELECT entity, score, decision_diff FROM decisions WHERE tenant_id = ${tenant} ORDER BY ledger_index`.execute(tx),
    );
    const last = new Map<string, number>();
    for (const row of rows.rows) {
      const before = last.get(row.entity);
      assert.equal(row.decision_diff.first, before === undefined, `first decision about ${row.entity}`);
      if (before !== undefined && row.decision_diff.score)
        assert.equal(row.decision_diff.score.from, before, `diff of ${row.entity} starts from its previous score`);
      last.set(row.entity, row.score);
    }
    // What the API returned is what was stored.
    const byId = new Map(stored.map((d) => [d.decision_id, d]));
    const apiView = await nodes[1]!.decisions.service.get(tenant, stored[stored.length - 1]!.decision_id);
    assert.deepEqual(apiView, byId.get(apiView.decision_id));
  });

  it('refuses to write a group hashed onto another history of the same size (40001), and nothing of it is stored', async () => {
    const db = nodes[0]!.platform.db.db;
    const read = await sql<{ s: { size: number; frontier: string[] } }>`SELECT fg_decision_group_read(${tenant}, '{}'::text[], '{}'::text[]) AS s`.execute(db);
    const { size, frontier } = read.rows[0]!.s;
    assert.ok(frontier.length > 0);
    // One forged ledger entry and nothing else, through the write the service uses (migration 0019).
    const append = (expectedSize: number, expectedFrontier: string[]) =>
      sql`SELECT fg_decision_group_append(${tenant}, ${expectedSize}, ${expectedFrontier}::text[], ${size + 1}::bigint,
        ${[size]}::bigint[], ${['{"type":"forged"}']}::text[], '{}'::smallint[], '{}'::bigint[], '{}'::text[],
        '{}'::text[], '{}'::text[], '{}'::text[], '{}'::text[], '{}'::text[], '{}'::text[], '{}'::integer[], '{}'::text[],
        '{}'::text[], '{}'::text[], '{}'::text[], '{}'::text[], '{}'::text[], '{}'::bigint[], '{}'::timestamptz[],
        '{}'::timestamptz[], 'defend', now())`.execute(db);
    const forged = frontier.map((h, i) => (i === frontier.length - 1 ? 'ff'.repeat(32) : h));
    await assert.rejects(append(size, forged), (err: { code?: string }) => err.code === '40001');
    await assert.rejects(append(size - 1, frontier), (err: { code?: string }) => err.code === '40001');
    const after = await sql<{ s: { size: number; frontier: string[] } }>`SELECT fg_decision_group_read(${tenant}, '{}'::text[], '{}'::text[]) AS s`.execute(db);
    assert.deepEqual(after.rows[0]!.s, read.rows[0]!.s, 'the log did not move');
  });
});
