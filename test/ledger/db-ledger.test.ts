import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { exportPrivateKeyPem, generateEd25519KeyPair } from '../../src/platform/crypto/ed25519.js';
import { verifyCheckpoint } from '../../src/ledger/checkpoint.js';
import { parseVerifierKey } from '../../src/ledger/note.js';
import { verifyConsistency, verifyInclusion } from '../../src/ledger/proof-verify.js';
import { recordLeafHash } from '../../src/ledger/record.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { runCli } from '../helpers/cli.js';

const b64 = (s: string) => Buffer.from(s, 'base64');

async function appendRecords(t: TestApp, tenant: string, records: unknown[]): Promise<number[]> {
  const out: number[] = [];
  for (const r of records) {
    const [e] = await t.platform.db.withTenant(tenant, (tx) => t.ledger.ledger.append(tx, tenant, 'decisions', [r]));
    out.push(e!.index);
  }
  return out;
}

for (const dbKind of ['embedded', 'postgres'] as const) {
  describe(`ledger on the database (${dbKind})`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp({ db: dbKind });
    });
    after(async () => t?.close());

    it('appends, proves inclusion and consistency between signed checkpoints, over HTTP', async () => {
      const h = { 'x-api-key': t.adminKey };
      const first = await appendRecords(
        t,
        t.tenantId,
        Array.from({ length: 13 }, (_, i) => ({ decision_id: `dec_${i}`, n: i })),
      );
      assert.deepEqual(
        first,
        Array.from({ length: 13 }, (_, i) => i),
      );
      const cp1 = (await t.app.inject({ url: '/ledger/checkpoint?fresh=true', headers: h })).json();
      assert.equal(cp1.tree_size, 13);
      const verifiers = (cp1.verifier_keys as string[]).map(parseVerifierKey);
      const v1 = verifyCheckpoint(cp1.note, verifiers, { origin: `frostgate.ledger/${t.tenantId}/decisions` });

      // A batch append in one transaction gets consecutive indices.
      const batch = await t.platform.db.withTenant(t.tenantId, (tx) =>
        t.ledger.ledger.append(
          tx,
          t.tenantId,
          'decisions',
          Array.from({ length: 20 }, (_, i) => ({ decision_id: `dec_b${i}` })),
        ),
      );
      assert.deepEqual(
        batch.map((e) => e.index),
        Array.from({ length: 20 }, (_, i) => 13 + i),
      );
      const cp2 = (await t.app.inject({ url: '/ledger/checkpoint?fresh=true', headers: h })).json();
      assert.equal(cp2.tree_size, 33);
      const v2 = verifyCheckpoint(cp2.note, verifiers);

      for (const index of [0, 5, 12, 13, 32]) {
        const res = await t.app.inject({ url: `/ledger/proof/inclusion?index=${index}&tree_size=33`, headers: h });
        assert.equal(res.statusCode, 200, res.body);
        const p = res.json();
        const entries = (await t.app.inject({ url: `/ledger/entries?start=${index}&end=${index + 1}`, headers: h })).json().entries;
        assert.equal(entries[0].index, index);
        verifyInclusion({ index, treeSize: 33, leafHash: recordLeafHash(entries[0].record), proof: p.proof.map(b64), root: v2.checkpoint.rootHash });
      }
      const cons = (await t.app.inject({ url: '/ledger/proof/consistency?from=13&to=33', headers: h })).json();
      verifyConsistency({ firstSize: 13, secondSize: 33, firstRoot: v1.checkpoint.rootHash, secondRoot: v2.checkpoint.rootHash, proof: cons.proof.map(b64) });
    });

    it('refuses proofs beyond the log and out-of-range queries with clear errors', async () => {
      const h = { 'x-api-key': t.adminKey };
      const r1 = await t.app.inject({ url: '/ledger/proof/inclusion?index=0&tree_size=100000', headers: h });
      assert.equal(r1.statusCode, 422);
      assert.match(r1.json().detail, /beyond the log size/);
      assert.equal((await t.app.inject({ url: '/ledger/proof/inclusion?index=-1&tree_size=1', headers: h })).statusCode, 400);
      assert.equal((await t.app.inject({ url: '/ledger/entries?start=0&end=5000', headers: h })).statusCode, 400);
      assert.equal((await t.app.inject({ url: '/ledger/checkpoint' })).statusCode, 401);
    });

    it('is tenant-bound: another tenant sees only its own log; the audit log needs admin', async () => {
      await t.auth.store.createTenant('ledger-other');
      const other = await t.auth.store.createKey({ tenantId: 'ledger-other', scopes: ['decisions:read'] });
      const h = { 'x-api-key': other.key };
      const cp = (await t.app.inject({ url: '/ledger/checkpoint?fresh=true', headers: h })).json();
      assert.equal(cp.tree_size, 0);
      assert.match(cp.origin, /ledger-other\/decisions$/);
      const entries = (await t.app.inject({ url: '/ledger/entries?start=0&end=10', headers: h })).json();
      assert.deepEqual(entries.entries, []);
      assert.equal((await t.app.inject({ url: '/ledger/proof/inclusion?index=0&tree_size=1', headers: h })).statusCode, 422);
      assert.equal((await t.app.inject({ url: '/ledger/checkpoint?log=audit', headers: h })).statusCode, 403);
      assert.equal((await t.app.inject({ url: '/ledger/entries?start=0&end=1', headers: { ...h, 'x-tenant-id': t.tenantId } })).statusCode, 403);
    });
  });
}

describe('frostgate verify against tampering (Postgres, rows changed directly in the database)', () => {
  let t: TestApp;
  let dir: string;
  let keyPath: string;
  let dbUrl: string;
  let admin: pg.Client;
  const tenant = 'default';

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fg-ledger-'));
    keyPath = path.join(dir, 'ledger.pem');
    await writeFile(keyPath, exportPrivateKeyPem(generateEd25519KeyPair().privateKey), { mode: 0o600 });
    t = await startTestApp({ db: 'postgres', env: { FG_LEDGER_KEY_PATH: keyPath } });
    dbUrl = t.platform.config.db.url!;
    admin = new pg.Client({ connectionString: dbUrl });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const cliEnv = () => ({ FG_ENV: 'test', FG_DB_URL: dbUrl, FG_LEDGER_KEY_PATH: keyPath });
  const verify = () => runCli(['verify', '--tenant', tenant, '--json'], cliEnv());

  async function freshLog(n: number) {
    await admin.query(`DELETE FROM ledger_entries; DELETE FROM ledger_nodes; DELETE FROM ledger_checkpoints; DELETE FROM ledger_heads`);
    await appendRecords(
      t,
      tenant,
      Array.from({ length: n }, (_, i) => ({ decision_id: `dec_${i}`, threat_level: i % 2 ? 'high' : 'low' })),
    );
    await t.ledger.ledger.checkpoint(tenant, 'decisions', { fresh: true });
  }

  it('passes on an untouched log', async () => {
    await freshLog(40);
    const res = await verify();
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.ok, true);
    assert.equal(out.size, 40);
    assert.equal(out.checkpointsChecked, 1);
    const human = await runCli(['verify', '--tenant', tenant], cliEnv());
    assert.match(human.stdout, /^PASS: default\/decisions: 40 entries recomputed/);
  });

  it('refuses a tenant that does not exist instead of passing its empty log', async () => {
    const res = await runCli(['verify', '--tenant', 'no-such-tenant-x', '--json'], cliEnv());
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.equal(JSON.parse(res.stderr).error.code, 'not_found');
    assert.doesNotMatch(res.stdout, /PASS/);
  });

  const tampers: Array<[string, string, number]> = [
    ['a modified record', `UPDATE ledger_entries SET record_json = replace(record_json, 'high', 'low') WHERE idx = 17`, 17],
    ['a deleted record', `DELETE FROM ledger_entries WHERE idx = 9`, 9],
    [
      'two reordered records',
      `UPDATE ledger_entries SET record_json = CASE idx WHEN 3 THEN (SELECT record_json FROM ledger_entries ` +
        `WHERE idx = 4) ELSE (SELECT record_json FROM ledger_entries WHERE idx = 3) END WHERE idx IN (3, 4)`,
      3,
    ],
    ['an inserted record', `INSERT INTO ledger_entries (tenant_id, log, idx, record_json) VALUES ('default', 'decisions', 40, '{"decision_id":"forged"}')`, 40],
    ['a rewritten tree node', `UPDATE ledger_nodes SET hash = decode(repeat('ab', 32), 'hex') WHERE level = 2 AND idx = 5`, 23],
  ];
  for (const [what, statement, index] of tampers) {
    it(`fails naming the index after ${what}`, async () => {
      await freshLog(40);
      await admin.query(statement);
      const res = await verify();
      assert.equal(res.code, 1, res.stdout);
      const out = JSON.parse(res.stdout);
      assert.equal(out.ok, false);
      assert.equal(out.firstBadIndex, index, JSON.stringify(out.problems));
    });
  }

  it('a consistent history rewrite (record and its leaf node) is caught by the signed checkpoint, and consistency proofs fail', async () => {
    await freshLog(16);
    const cp = await t.ledger.ledger.checkpoint(tenant, 'decisions');
    const forged = JSON.stringify({ decision_id: 'dec_5', threat_level: 'none' });
    const leaf = recordLeafHash(JSON.parse(forged));
    await admin.query(`UPDATE ledger_entries SET record_json = $1 WHERE idx = 5`, [forged]);
    await admin.query(`UPDATE ledger_nodes SET hash = $1 WHERE level = 0 AND idx = 5`, [leaf]);
    // Recompute the upper nodes the way an attacker with database access would.
    const { hashChildren } = await import('../../src/ledger/hash.js');
    for (let level = 1; level <= 4; level++) {
      const idx = Math.floor(5 / 2 ** level);
      const kids = await admin.query(`SELECT idx, hash FROM ledger_nodes WHERE level = $1 AND idx IN ($2, $3) ORDER BY idx`, [level - 1, idx * 2, idx * 2 + 1]);
      await admin.query(`UPDATE ledger_nodes SET hash = $1 WHERE level = $2 AND idx = $3`, [hashChildren(kids.rows[0].hash, kids.rows[1].hash), level, idx]);
    }
    const res = await verify();
    assert.equal(res.code, 1);
    const out = JSON.parse(res.stdout);
    assert.match(out.problems.map((p: { message: string }) => p.message).join('\n'), /does not match the signed checkpoint/);

    // Appending more and proving consistency from the old signed root now fails.
    await appendRecords(t, tenant, [{ decision_id: 'dec_after' }]);
    const newer = await t.ledger.ledger.consistency(tenant, 'decisions', 16, 17);
    assert.throws(() => verifyConsistency({ firstSize: 16, secondSize: 17, firstRoot: b64(cp.root_hash), secondRoot: newer.toRoot, proof: newer.proof }));
  });

  it('verify decision checks one record offline and fails on any changed byte', async () => {
    await freshLog(25);
    const h = { 'x-api-key': t.adminKey };
    const cp = (await t.app.inject({ url: '/ledger/checkpoint', headers: h })).json();
    const proof = (await t.app.inject({ url: `/ledger/proof/inclusion?index=11&tree_size=${cp.tree_size}`, headers: h })).json();
    const entry = (await t.app.inject({ url: '/ledger/entries?start=11&end=12', headers: h })).json().entries[0];
    const files = { record: path.join(dir, 'r.json'), proof: path.join(dir, 'p.json'), checkpoint: path.join(dir, 'c.txt'), pubkey: path.join(dir, 'k.pub') };
    await writeFile(files.record, JSON.stringify(entry.record, null, 2));
    await writeFile(files.proof, JSON.stringify(proof));
    await writeFile(files.checkpoint, cp.note);
    await writeFile(files.pubkey, `${cp.verifier_keys[0]}\n`);
    const args = ['verify', 'decision', '--record', files.record, '--proof', files.proof, '--checkpoint', files.checkpoint, '--pubkey', files.pubkey];
    const ok = await runCli(args, { FG_DB_URL: 'postgres://nobody@127.0.0.1:1/none' });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^PASS: record is entry 11 of frostgate\.ledger\/default\/decisions at signed tree size 25/);

    await writeFile(files.record, JSON.stringify({ ...entry.record, threat_level: 'none' }));
    const bad = await runCli(args);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /FAIL[\s\S]*not in the log at index 11/);

    await writeFile(files.record, JSON.stringify(entry.record));
    await writeFile(
      files.checkpoint,
      cp.note.replace(/\n(\d+)\n/, (_m: string, n: string) => `\n${Number(n) + 1}\n`),
    );
    const badCp = await runCli(args);
    assert.equal(badCp.code, 1);
    assert.match(badCp.stdout, /checkpoint:/);
  });
});

describe('ledger signing key rotation', () => {
  it('checkpoints signed by a retired key stay verifiable: the API lists both keys, verify trusts the old one when told', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fg-rot-'));
    const { createThrowawayDatabase } = await import('../helpers/postgres.js');
    const throwaway = await createThrowawayDatabase();
    try {
      const keyA = path.join(dir, 'a.pem');
      const keyB = path.join(dir, 'b.pem');
      await writeFile(keyA, exportPrivateKeyPem(generateEd25519KeyPair().privateKey));
      await writeFile(keyB, exportPrivateKeyPem(generateEd25519KeyPair().privateKey));
      const first = await startTestApp({ db: 'postgres', env: { FG_DB_URL: throwaway.url, FG_LEDGER_KEY_PATH: keyA } });
      await appendRecords(first, first.tenantId, [{ n: 1 }, { n: 2 }]);
      const oldVkey = first.ledger.ledger.signingKey.vkey;
      await first.ledger.ledger.checkpoint(first.tenantId, 'decisions', { fresh: true });
      await first.platform.close();

      const second = await startTestApp({ db: 'postgres', env: { FG_DB_URL: throwaway.url, FG_LEDGER_KEY_PATH: keyB } });
      try {
        await appendRecords(second, second.tenantId, [{ n: 3 }]);
        // The bootstrap key was shown to the first start only: make one for this reader.
        const reader = await second.auth.store.createKey({ tenantId: second.tenantId, scopes: ['decisions:read'] });
        const cp = (await second.app.inject({ url: '/ledger/checkpoint?fresh=true', headers: { 'x-api-key': reader.key } })).json();
        assert.equal(cp.tree_size, 3);
        assert.deepEqual(cp.verifier_keys, [oldVkey, second.ledger.ledger.signingKey.vkey]);
        const env = { FG_ENV: 'test', FG_DB_URL: throwaway.url, FG_LEDGER_KEY_PATH: keyB };
        const untrusted = await runCli(['verify', '--tenant', second.tenantId, '--json'], env);
        assert.equal(untrusted.code, 1, 'an old checkpoint by a key nobody vouched for is not trusted');
        assert.match(untrusted.stdout, /checkpoint at size 2/);
        await writeFile(path.join(dir, 'trusted'), `${oldVkey}\n`);
        const trusted = await runCli(['verify', '--tenant', second.tenantId, '--trusted-keys', path.join(dir, 'trusted'), '--json'], env);
        assert.equal(trusted.code, 0, trusted.stdout);
        assert.equal(JSON.parse(trusted.stdout).checkpointsChecked, 2);
      } finally {
        await second.platform.close();
      }
    } finally {
      await throwaway.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
