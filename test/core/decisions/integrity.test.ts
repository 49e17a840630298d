import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { runCli } from '../../helpers/cli.js';

const BASE_MS = Math.floor(Date.now() / 60_000) * 60_000 - 600_000;
const sshFailure = (ip: string, s: number) => ({
  source: 'sshd',
  event_type: 'auth.failure',
  occurred_at: new Date(BASE_MS + s * 1000).toISOString(),
  payload: { service: 'ssh', src_ip: ip, username: `user${s}` },
});

/**
 * A decisions row is served by the API and used by canaries and bouncers, while the ledger holds
 * the record it was appended as. Someone who edits a row (score, threat_level, the event) leaves
 * the ledger intact: GET /decisions/{id} says so and `frostgate verify` names the row.
 */
describe('decision rows against their ledger records (Postgres, rows changed directly in the database)', () => {
  let t: TestApp;
  let key: string;
  let admin: pg.Client;
  const ids: string[] = [];
  let high: { decision_id: string; ledger_index: number };

  before(async () => {
    // No background checkpoint: it would be signed by this server's ephemeral key, which the CLI does not know.
    t = await startTestApp({ db: 'postgres', captureLogs: true, env: { FG_CHECKPOINT_INTERVAL_S: '86400' } });
    key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['defend:write', 'decisions:read'] })).key;
    admin = new pg.Client({ connectionString: t.platform.config.db.url! });
    await admin.connect();
    // A brute force (the fifth failure is high, blocked, with a diff) and quiet ones around it.
    for (let i = 0; i < 8; i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/defend',
        headers: { 'x-api-key': key },
        payload: sshFailure(i < 5 ? '100.64.40.1' : `100.64.40.${i}`, i),
      });
      assert.equal(res.statusCode, 200, res.body);
      ids.push(res.json().decision_id);
      if (res.json().threat_level === 'high') high = res.json();
    }
    assert.ok(high, 'the brute force was decided high');
  });
  after(async () => {
    await admin?.end();
    await t?.close();
  });

  const get = (id: string) => t.app.inject({ url: `/decisions/${id}`, headers: { 'x-api-key': key } });
  const verify = async () => {
    const res = await runCli(['verify', '--tenant', t.tenantId, '--json'], { FG_ENV: 'test', FG_DB_URL: t.platform.config.db.url! });
    assert.ok(res.stdout.startsWith('{'), res.stdout + res.stderr);
    return { code: res.code, out: JSON.parse(res.stdout) };
  };

  it('every untouched row matches its ledger record: blocks, diffs and events included', async () => {
    for (const id of ids) {
      const res = await get(id);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json().integrity, { status: 'match' }, id);
    }
    const { code, out } = await verify();
    assert.equal(code, 0, JSON.stringify(out));
    assert.equal(out.decisionRows.rowsChecked, 8);
    assert.deepEqual(out.decisionRows.mismatched, []);
  });

  it('an UPDATE of decisions.score is reported by GET /decisions/{id} and by verify', async () => {
    await admin.query(`UPDATE decisions SET score = 1 WHERE decision_id = $1`, [high.decision_id]);
    const res = await get(high.decision_id);
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().score, 1, 'the row is still served, as stored');
    assert.deepEqual(res.json().integrity, { status: 'mismatch', fields: ['score'] });
    const alarm = t.logs!.lines.find((l) => l.type === 'decision_integrity' && l.decision_id === high.decision_id);
    assert.ok(alarm, 'the mismatch is in the security log');
    assert.equal(alarm.logger, 'frostgate.security');
    assert.equal(alarm.tenant_id, t.tenantId);
    assert.ok(alarm.request_id);

    const { code, out } = await verify();
    assert.equal(code, 1);
    assert.equal(out.ok, false);
    assert.deepEqual(out.problems, [], 'the ledger itself is intact');
    assert.deepEqual(out.decisionRows.mismatched, [
      { decision_id: high.decision_id, ledger_index: high.ledger_index, integrity: { status: 'mismatch', fields: ['score'] } },
    ]);
    const human = await runCli(['verify', '--tenant', t.tenantId], { FG_ENV: 'test', FG_DB_URL: t.platform.config.db.url! });
    assert.equal(human.code, 1);
    assert.match(
      human.stdout,
      new RegExp(`^  - decision ${high.decision_id} \\(ledger index ${high.ledger_index}\\): score differs from its ledger record`, 'm'),
    );
  });

  it('other columns, the event, a moved ledger_index and a deleted row are named too', async () => {
    await admin.query(
      `UPDATE decisions SET score = (SELECT (record_json::jsonb ->> 'score')::int FROM ledger_entries ` +
        `WHERE tenant_id = $2 AND log = 'decisions' AND idx = $3) WHERE decision_id = $1`,
      [high.decision_id, t.tenantId, high.ledger_index],
    );
    assert.deepEqual((await get(high.decision_id)).json().integrity, { status: 'match' }, 'restoring the column restores the match');

    await admin.query(`UPDATE decisions SET threat_level = 'low', block_until = NULL WHERE decision_id = $1`, [high.decision_id]);
    assert.deepEqual((await get(high.decision_id)).json().integrity, { status: 'mismatch', fields: ['block_until', 'threat_level'] });
    await admin.query(`UPDATE decisions SET event = jsonb_set(event, '{payload,src_ip}', '"100.64.99.99"') WHERE decision_id = $1`, [ids[0]]);
    assert.deepEqual((await get(ids[0]!)).json().integrity, { status: 'mismatch', fields: ['event'] });
    await admin.query(`UPDATE decisions SET ledger_index = 1000 WHERE decision_id = $1`, [ids[6]]);
    assert.deepEqual((await get(ids[6]!)).json().integrity, { status: 'missing', detail: 'no ledger entry at index 1000' });
    await admin.query(`DELETE FROM decisions WHERE decision_id = $1`, [ids[7]]);

    const { code, out } = await verify();
    assert.equal(code, 1);
    const byId = Object.fromEntries(out.decisionRows.mismatched.map((m: { decision_id: string; integrity: unknown }) => [m.decision_id, m.integrity]));
    assert.deepEqual(byId, {
      [high.decision_id]: { status: 'mismatch', fields: ['block_until', 'threat_level'] },
      [ids[0]!]: { status: 'mismatch', fields: ['event'] },
      [ids[6]!]: { status: 'missing', detail: 'no ledger entry at index 1000' },
    });
    // Entries 6 and 7 lost their rows (one moved away, one deleted).
    assert.deepEqual(out.decisionRows.unrowed, [
      { index: 6, decision_id: ids[6] },
      { index: 7, decision_id: ids[7] },
    ]);
  });
});
