import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { hashLeaf } from '../../src/ledger/hash.js';
import { MerkleFrontier } from '../../src/ledger/merkle.js';
import type { MerkleNode } from '../../src/ledger/node-store.js';
import { verifierOf } from '../../src/ledger/note.js';
import { CheckpointWitness, witnessKey } from '../../src/ledger/witness.js';
import { FilesystemStorage } from '../../src/platform/storage/filesystem.js';
import { canonicalize } from '../../src/platform/crypto/canonical-json.js';
import { exportPrivateKeyPem, generateEd25519KeyPair } from '../../src/platform/crypto/ed25519.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { runCli } from '../helpers/cli.js';

const BASE_MS = Math.floor(Date.now() / 60_000) * 60_000 - 600_000;
let seq = 0;
/** Failed SSH logins from a few sources: some decisions are high, blocked and carry a diff. */
const sshFailure = () => {
  seq++;
  return {
    source: 'sshd',
    event_type: 'auth.failure',
    occurred_at: new Date(BASE_MS + seq * 1000).toISOString(),
    payload: { service: 'ssh', src_ip: `100.64.30.${seq % 3}`, username: `u${seq}` },
  };
};

/**
 * What someone with write access to the database can do to a log without the ledger's key: edit
 * an entry (and its decisions row, so they agree), recompute every tree node and the head, and
 * delete the checkpoints signed after the edit. The server then signs the rewritten tree itself.
 * The database alone cannot tell; a checkpoint kept elsewhere (saved by an auditor, or exported
 * by the witness) can.
 */
describe('frostgate verify against a consistent rewrite by a database insider', () => {
  let t: TestApp;
  let dir: string;
  let keyPath: string;
  let storageDir: string;
  let admin: pg.Client;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fg-anchor-'));
    keyPath = path.join(dir, 'ledger.pem');
    storageDir = path.join(dir, 'storage');
    await writeFile(keyPath, exportPrivateKeyPem(generateEd25519KeyPair().privateKey), { mode: 0o600 });
    t = await startTestApp({
      db: 'postgres',
      captureLogs: true,
      env: { FG_LEDGER_KEY_PATH: keyPath, FG_STORAGE_DIR: storageDir, FG_LEDGER_WITNESS: 'storage', FG_CHECKPOINT_INTERVAL_S: '86400' },
    });
    admin = new pg.Client({ connectionString: t.platform.config.db.url! });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const env = (witness: 'storage' | 'off') => ({
    FG_ENV: 'test',
    FG_DB_URL: t.platform.config.db.url!,
    FG_LEDGER_KEY_PATH: keyPath,
    FG_STORAGE_DIR: storageDir,
    FG_LEDGER_WITNESS: witness,
  });
  const verify = (tenant: string, witness: 'storage' | 'off', ...extra: string[]) => runCli(['verify', '--tenant', tenant, ...extra], env(witness));
  const verifyJson = async (tenant: string, witness: 'storage' | 'off', ...extra: string[]) => {
    const res = await verify(tenant, witness, '--json', ...extra);
    assert.ok(res.stdout.startsWith('{'), res.stdout + res.stderr);
    return { code: res.code, out: JSON.parse(res.stdout) };
  };

  async function tenantWithKey(tenant: string): Promise<string> {
    await t.auth.store.createTenant(tenant);
    return (await t.auth.store.createKey({ tenantId: tenant, scopes: ['defend:write', 'decisions:read'] })).key;
  }
  async function decide(key: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': key }, payload: sshFailure() });
      assert.equal(res.statusCode, 200, res.body);
    }
  }
  /** A checkpoint now, exported by the witness as its background tick would. */
  async function checkpoint(key: string, tenant: string): Promise<{ tree_size: number; note: string }> {
    const cp = (await t.app.inject({ url: '/ledger/checkpoint?fresh=true', headers: { 'x-api-key': key } })).json();
    await t.ledger.witness!.sync(tenant, 'decisions');
    return cp;
  }

  /** The insider's tools: recompute every node from the entries as they now stand, and the head. */
  async function recomputeTree(tenant: string): Promise<void> {
    const entries = await admin.query(`SELECT idx, record_json FROM ledger_entries WHERE tenant_id = $1 AND log = 'decisions' ORDER BY idx`, [tenant]);
    let frontier = MerkleFrontier.EMPTY;
    const nodes: MerkleNode[] = [];
    for (const e of entries.rows) {
      const r = frontier.append(hashLeaf(Buffer.from(e.record_json, 'utf8')));
      nodes.push(...r.nodes);
      frontier = r.frontier;
    }
    await admin.query(`DELETE FROM ledger_nodes WHERE tenant_id = $1 AND log = 'decisions'`, [tenant]);
    for (const n of nodes)
      await admin.query(`INSERT INTO ledger_nodes (tenant_id, log, level, idx, hash) VALUES ($1, 'decisions', $2, $3, $4)`, [tenant, n.level, n.index, n.hash]);
    await admin.query(`UPDATE ledger_heads SET size = $2 WHERE tenant_id = $1 AND log = 'decisions'`, [tenant, entries.rows.length]);
  }

  it(
    'edit entry 10, recompute ledger_nodes and head, delete later checkpoints: ' + "passes today's verify, fails with --checkpoint and with the witness",
    async () => {
      const tenant = 'insider-edit';
      const key = await tenantWithKey(tenant);
      await decide(key, 8);
      await checkpoint(key, tenant);
      await decide(key, 8);
      const saved = await checkpoint(key, tenant);
      assert.equal(saved.tree_size, 16);
      const savedFile = path.join(dir, 'auditor-checkpoint-16.txt');
      await writeFile(savedFile, saved.note);
      assert.deepEqual((await readdir(path.join(storageDir, 'ledger-witness', tenant, 'decisions'))).sort(), [
        '0000000000000008.checkpoint',
        '0000000000000016.checkpoint',
        'latest.checkpoint',
      ]);
      const clean = await verifyJson(tenant, 'storage', '--checkpoint', savedFile);
      assert.equal(clean.code, 0, JSON.stringify(clean.out.problems));
      assert.equal(clean.out.externalCheckpointsChecked, 3);

      // The insider: entry 10 and its decisions row now say the decision was harmless.
      const row = await admin.query(`SELECT record_json FROM ledger_entries WHERE tenant_id = $1 AND log = 'decisions' AND idx = 10`, [tenant]);
      const record = JSON.parse(row.rows[0].record_json);
      const edited = { ...record, score: 0, explanation: 'nothing happened' };
      await admin.query(`UPDATE ledger_entries SET record_json = $2 WHERE tenant_id = $1 AND log = 'decisions' AND idx = 10`, [tenant, canonicalize(edited)]);
      await admin.query(`UPDATE decisions SET score = 0, explanation = 'nothing happened' WHERE tenant_id = $1 AND ledger_index = 10`, [tenant]);
      await recomputeTree(tenant);
      await admin.query(`DELETE FROM ledger_checkpoints WHERE tenant_id = $1 AND log = 'decisions' AND tree_size > 10`, [tenant]);
      // ... and the server, appending on, signs the rewritten tree.
      await decide(key, 1);
      const resigned = (await t.app.inject({ url: '/ledger/checkpoint?fresh=true', headers: { 'x-api-key': key } })).json();
      assert.equal(resigned.tree_size, 17);

      const today = await verify(tenant, 'off');
      assert.equal(today.code, 0, today.stdout + today.stderr);
      assert.match(
        today.stdout,
        /^PASS: insider-edit\/decisions: 17 entries recomputed, 2 signed checkpoint\(s\) match; 17 decision row\(s\) match their ledger records$/m,
      );
      assert.match(today.stdout, /^NOTE: no checkpoint held outside the database was checked: a consistent rewrite by someone with database write access/m);

      const anchored = await verifyJson(tenant, 'off', '--checkpoint', savedFile);
      assert.equal(anchored.code, 1);
      assert.equal(anchored.out.ok, false);
      assert.equal(anchored.out.firstBadIndex, 8, 'the last size known good is 8: the edit lies in [8, 16)');
      assert.match(
        anchored.out.problems.map((p: { message: string }) => p.message).join('\n'),
        new RegExp(
          `the log recomputed to size 16 does not match the signed checkpoint held outside the database ` +
            `\\(--checkpoint ${savedFile.replace(/[.]/g, '\\.')}\\): history changed between index 8 and 15`,
        ),
      );
      const human = await verify(tenant, 'off', '--checkpoint', savedFile);
      assert.equal(human.code, 1);
      assert.match(human.stdout, /^FAIL: insider-edit\/decisions: first mismatch at index 8$/m);

      const witnessed = await verifyJson(tenant, 'storage');
      assert.equal(witnessed.code, 1);
      assert.equal(witnessed.out.firstBadIndex, 8);
      assert.match(
        witnessed.out.problems.map((p: { message: string }) => p.message).join('\n'),
        new RegExp(
          `held outside the database \\(witness ${path.join(storageDir, witnessKey(tenant, 'decisions', 16)).replace(/[.]/g, '\\.')}\\): ` +
            `history changed between index 8 and 15`,
        ),
      );

      // The witness will not export the re-signed tree: it does not extend what it holds.
      const sync = await t.ledger.witness!.sync(tenant, 'decisions');
      assert.deepEqual(sync.exported, []);
      assert.equal(sync.refused?.treeSize, 17);
      assert.match(sync.refused.reason, /does not extend the exported checkpoint at size 16/);
      const alarm = t.logs!.lines.find((l) => l.logger === 'frostgate.security' && l.type === 'ledger_witness_refused' && l.tenant_id === tenant);
      assert.ok(alarm, 'the refusal is in the security log');
      assert.equal(alarm.level, 'error');
      const refusals = await t.platform.metrics.registry.getSingleMetric('ledger_witness_refused_total')!.get();
      assert.equal(refusals.values.find((v) => v.labels.log === 'decisions')?.value, 1);
      // Reported once per refused checkpoint, not at every tick.
      await t.ledger.witness!.sync(tenant, 'decisions');
      assert.equal(t.logs!.lines.filter((l) => l.type === 'ledger_witness_refused' && l.tenant_id === tenant).length, 1);
      // A witness restarted on the same store resumes from what it exported, and refuses too.
      const restarted = new CheckpointWitness({
        storage: new FilesystemStorage(storageDir),
        ledger: t.ledger.ledger,
        trusted: [verifierOf(t.ledger.ledger.signingKey.signer)],
        log: t.platform.log,
        security: t.platform.security,
      });
      assert.equal((await restarted.sync(tenant, 'decisions')).refused?.treeSize, 17);
      assert.deepEqual((await readdir(path.join(storageDir, 'ledger-witness', tenant, 'decisions'))).sort(), [
        '0000000000000008.checkpoint',
        '0000000000000016.checkpoint',
        'latest.checkpoint',
      ]);
    },
  );

  it('entries removed from the head (tree and checkpoints trimmed to match): fails against the witness', async () => {
    const tenant = 'insider-trim';
    const key = await tenantWithKey(tenant);
    await decide(key, 12);
    await checkpoint(key, tenant);
    await admin.query(`DELETE FROM decisions WHERE tenant_id = $1 AND ledger_index >= 9`, [tenant]);
    await admin.query(`DELETE FROM ledger_entries WHERE tenant_id = $1 AND log = 'decisions' AND idx >= 9`, [tenant]);
    await recomputeTree(tenant);
    await admin.query(`DELETE FROM ledger_checkpoints WHERE tenant_id = $1 AND log = 'decisions' AND tree_size > 9`, [tenant]);

    assert.equal((await verify(tenant, 'off')).code, 0, 'the database alone is consistent');
    const witnessed = await verifyJson(tenant, 'storage');
    assert.equal(witnessed.code, 1);
    assert.match(
      witnessed.out.problems.map((p: { message: string }) => p.message).join('\n'),
      /is for size 12, but the database's log has 9 entries: entries were removed from the head/,
    );
  });

  it('an exported checkpoint the ledger key did not sign is a failure, not skipped; a bad --checkpoint file is refused with the fix', async () => {
    const tenant = 'insider-plant';
    const key = await tenantWithKey(tenant);
    await decide(key, 3);
    const cp = await checkpoint(key, tenant);
    const planted = path.join(storageDir, witnessKey(tenant, 'decisions', 2));
    await writeFile(planted, cp.note.replace(/\n3\n/, '\n2\n'));
    const res = await verifyJson(tenant, 'storage');
    assert.equal(res.code, 1);
    assert.match(res.out.problems.map((p: { message: string }) => p.message).join('\n'), /witness .*0000000000000002\.checkpoint: .*(signature|not signed)/);
    await rm(planted);
    assert.equal((await verifyJson(tenant, 'storage')).code, 0);

    const other = path.join(dir, 'other-log.txt');
    await writeFile(other, cp.note);
    const wrongLog = await verify(tenant, 'off', '--log', 'audit', '--checkpoint', other);
    assert.equal(wrongLog.code, 1);
    assert.match(
      wrongLog.stderr,
      /--checkpoint .*other-log\.txt: checkpoint is for log "frostgate\.ledger\/insider-plant\/decisions", expected "frostgate\.ledger\/insider-plant\/audit"/,
    );
    const foreignKey = path.join(dir, 'foreign.pem');
    await writeFile(foreignKey, exportPrivateKeyPem(generateEd25519KeyPair().privateKey));
    const untrusted = await runCli(['verify', '--tenant', tenant, '--checkpoint', other], { ...env('off'), FG_LEDGER_KEY_PATH: foreignKey });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /not signed by any known key[\s\S]*fix: .*--trusted-keys/);
  });
});
