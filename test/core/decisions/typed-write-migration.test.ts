import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import pg from 'pg';
import { MerkleFrontier } from '../../../src/ledger/merkle.js';
import { verifierOf } from '../../../src/ledger/note.js';
import { verifyConsistency, verifyInclusion } from '../../../src/ledger/proof-verify.js';
import { planAppend } from '../../../src/ledger/service.js';
import { verifyLogFromDatabase } from '../../../src/ledger/verify.js';
import { loadMigrations, runMigrations, type MigrationSession } from '../../../src/platform/db/migrate.js';
import { startTestApp } from '../../helpers/app.js';
import { createThrowawayDatabase } from '../../helpers/postgres.js';

/** The first migration of issue 22's write path: a database below it was written by the jsonb group document. */
const FIRST_NEW = 17;
const TENANT = 'legacy-tenant';

/** A group as the previous release stored it: fg_decision_group_write's jsonb document (migration 0014). */
function previousReleaseGroup(start: MerkleFrontier, from: number, n: number) {
  const records = Array.from({ length: n }, (_, i) => {
    const k = from + i;
    const event = {
      source: 'sshd',
      event_type: 'auth.failure',
      occurred_at: new Date(Date.UTC(2026, 10, 1, 0, 0, k)).toISOString(),
      payload: { src_ip: `10.0.0.${k}` },
    };
    return {
      type: 'decision',
      decision_id: `dec_${String(k).padStart(24, '0')}`,
      tenant_id: TENANT,
      event_id: `old-${k}`,
      event_digest: createHash('sha256').update(JSON.stringify(event)).digest('hex'),
      entity: `ip:10.0.0.${k}`,
      threat_level: 'low',
      score: 10,
      rules_triggered: ['ssh "brute"\\force'],
      mitigations: [],
      explanation: 'a failed login',
      decision_diff: null,
      ruleset_version: 'rs_old',
      doctrine_version: 'doc_old',
      occurred_at: event.occurred_at,
      block_until: null,
      path: 'defend',
      event,
    };
  });
  const appended = planAppend(
    start,
    records.map(({ event: _event, ...r }) => r),
  );
  const document = JSON.stringify({
    size: appended.frontier.size,
    entries: appended.rows,
    nodes: appended.nodes.map((x) => ({ level: x.level, idx: x.index, hash: x.hash.toString('hex') })),
    decisions: records.map((r, i) => ({
      ...r,
      type: undefined,
      tenant_id: undefined,
      ledger_index: appended.entries[i]!.index,
      created_at: new Date().toISOString(),
    })),
  });
  return { appended, document };
}

describe('a database written by the jsonb group write migrates forward (0017-0019)', () => {
  it('keeps every decision and proof, and the typed write appends after them', async () => {
    const db = await createThrowawayDatabase();
    try {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      let frontier = MerkleFrontier.EMPTY;
      try {
        const session: MigrationSession = {
          exec: async (text) => void (await client.query(text)),
          query: async <R>(text: string, params?: unknown[]) => (await client.query(text, params)).rows as R[],
        };
        await runMigrations(
          session,
          (await loadMigrations()).filter((m) => m.version < FIRST_NEW),
        );
        await client.query(`INSERT INTO tenants (id, name) VALUES ($1, 'filled by the previous release')`, [TENANT]);
        for (const [from, n] of [
          [0, 7],
          [7, 13],
        ] as const) {
          const group = previousReleaseGroup(frontier, from, n);
          const expected = frontier.nodes().map((x) => x.hash.toString('hex'));
          await client.query(`SELECT fg_decision_group_write($1, $2, $3::text[], $4::jsonb)`, [TENANT, frontier.size, expected, group.document]);
          frontier = group.appended.frontier;
        }
      } finally {
        await client.end();
      }
      const oldSize = frontier.size;
      const oldRoot = frontier.root();

      const t = await startTestApp({ db: 'postgres', env: { FG_DB_URL: db.url } });
      try {
        const key = (await t.auth.store.createKey({ tenantId: TENANT, scopes: ['defend:write', 'decisions:read'] })).key;
        // An event decided before the upgrade is still known by its id: not decided twice.
        const again = await t.app.inject({
          method: 'POST',
          url: '/defend',
          headers: { 'x-api-key': key },
          payload: { event_id: 'old-3', source: 'sshd', event_type: 'auth.failure', occurred_at: new Date().toISOString(), payload: { src_ip: '10.0.0.3' } },
        });
        assert.equal(again.statusCode, 200, again.body);
        assert.equal(again.json().decision_id, `dec_${'3'.padStart(24, '0')}`);
        for (let i = 0; i < 5; i++) {
          const r = await t.app.inject({
            method: 'POST',
            url: '/defend',
            headers: { 'x-api-key': key },
            payload: { source: 'sshd', event_type: 'auth.failure', occurred_at: new Date().toISOString(), payload: { src_ip: '10.0.0.3', username: `u${i}` } },
          });
          assert.equal(r.statusCode, 200, r.body);
          assert.equal(r.json().ledger_index, oldSize + i);
        }
        const check = await verifyLogFromDatabase(t.platform.db, TENANT, 'decisions', [verifierOf(t.ledger.ledger.signingKey.signer)]);
        assert.equal(check.ok, true, JSON.stringify(check.problems));
        assert.equal(check.size, oldSize + 5);

        const ledger = t.ledger.ledger;
        const consistency = await ledger.consistency(TENANT, 'decisions', oldSize, oldSize + 5);
        assert.deepEqual(consistency.fromRoot, oldRoot, 'the log before the upgrade is the one the previous release hashed');
        verifyConsistency({ firstSize: oldSize, secondSize: oldSize + 5, firstRoot: oldRoot, secondRoot: consistency.toRoot, proof: consistency.proof });
        for (const index of [0, 12, oldSize + 4]) {
          const inclusion = await ledger.inclusion(TENANT, 'decisions', index, oldSize + 5);
          verifyInclusion({ index, treeSize: oldSize + 5, leafHash: inclusion.leafHash, proof: inclusion.proof, root: consistency.toRoot });
        }
        // The old decision's row is intact and still matches its ledger record.
        const old = await t.app.inject({ url: `/decisions/dec_${'12'.padStart(24, '0')}`, headers: { 'x-api-key': key } });
        assert.equal(old.statusCode, 200, old.body);
        assert.deepEqual(old.json().rules_triggered, ['ssh "brute"\\force']);
      } finally {
        await t.close();
      }
    } finally {
      await db.drop();
    }
  });
});
