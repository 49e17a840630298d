import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../helpers/postgres.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

describe("ledger reads: RFC 9162 bounds, and damaged rows are the server's integrity failure, not the client's error", () => {
  let db: ThrowawayDatabase;
  let t: TestApp;
  let insider: pg.Client;
  before(async () => {
    db = await createThrowawayDatabase();
    t = await startTestApp({ db: 'postgres', captureLogs: true, env: { FG_DB_URL: db.url } });
    insider = new pg.Client({ connectionString: db.url });
    await insider.connect();
    for (let i = 0; i < 8; i++)
      await t.platform.db.withTenant(t.tenantId, (tx) => t.ledger.ledger.append(tx, t.tenantId, 'decisions', [{ decision_id: `dec_integrity_${i}`, n: i }]));
  });
  after(async () => {
    await insider?.end();
    await t?.close();
    await db?.drop();
  });
  const get = (url: string) => t.app.inject({ url, headers: { 'x-api-key': t.adminKey } });

  it('consistency from=0 is 400 naming querystring/from (0 < from <= to); from=to and from<to are proofs', async () => {
    const zero = await get('/ledger/proof/consistency?from=0&to=4');
    assert.equal(zero.statusCode, 400, zero.body);
    assert.equal(zero.json().code, 'validation_failed');
    assert.equal(zero.json().errors[0].path, 'querystring/from');
    assert.equal((await get('/ledger/proof/consistency?from=4&to=4')).statusCode, 200);
    assert.equal((await get('/ledger/proof/consistency?from=1&to=8')).statusCode, 200);
    assert.equal((await get('/ledger/proof/consistency?from=5&to=4')).statusCode, 422);
  });

  /** 500 integrity_failure for the entry, and a security log line with the request id and tenant. */
  async function assertIntegrityFailure(url: string, index: number, reason: RegExp): Promise<void> {
    const res = await get(url);
    assert.equal(res.statusCode, 500, res.body);
    const body = res.json();
    assert.equal(body.code, 'integrity_failure');
    assert.equal(body.index, index);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    const line = t.logs!.lines.find((l) => l.logger === 'frostgate.security' && l.type === 'ledger_integrity' && l.request_id === body.request_id);
    assert.ok(line, `no security log line for ${body.request_id}`);
    assert.equal(line.tenant_id, t.tenantId);
    assert.equal(line.index, index);
    assert.match(String(line.reason), reason);
  }

  it('an entry edited so it no longer parses: 500 integrity_failure, in the security log (it was 400 malformed_json)', async () => {
    assert.equal((await get('/ledger/entries?start=0&end=8')).statusCode, 200, 'intact before the edit');
    await insider.query(`UPDATE ledger_entries SET record_json = '{"decision_id": "dec_integrity_2", ' WHERE idx = 2`);
    await assertIntegrityFailure('/ledger/entries?start=0&end=8', 2, /not JSON/);
    assert.equal((await get('/ledger/entries?start=3&end=8')).statusCode, 200, 'pages without the damaged entry still read');
  });

  it('an entry edited into other valid JSON: 500, it no longer hashes to its stored leaf', async () => {
    await insider.query(`UPDATE ledger_entries SET record_json = '{"decision_id":"dec_integrity_4","n":400}' WHERE idx = 4`);
    await assertIntegrityFailure('/ledger/entries?start=3&end=6', 4, /stored leaf/);
  });

  it('a Merkle node deleted from ledger_nodes: proofs are 500 integrity_failure too, not an unexplained 500', async () => {
    assert.equal((await get('/ledger/proof/inclusion?index=0&tree_size=8')).statusCode, 200);
    await insider.query(`DELETE FROM ledger_nodes WHERE level = 0 AND idx = 0`);
    for (const url of ['/ledger/proof/inclusion?index=0&tree_size=8', '/ledger/proof/consistency?from=1&to=8']) {
      const res = await get(url);
      assert.equal(res.statusCode, 500, `${url}: ${res.body}`);
      assert.equal(res.json().code, 'integrity_failure', url);
      const line = t.logs!.lines.find((l) => l.type === 'ledger_integrity' && l.request_id === res.json().request_id);
      assert.match(String(line?.reason), /not stored/, url);
    }
  });

  it('an entry deleted below the head: 500, the page does not silently skip it', async () => {
    await insider.query(`DELETE FROM ledger_entries WHERE idx = 6`);
    await assertIntegrityFailure('/ledger/entries?start=5&end=8', 6, /missing/);
    assert.equal((await get('/ledger/entries?start=7&end=100')).statusCode, 200, 'beyond the head is simply empty');
  });
});
