import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Orchestrator } from '../../../src/forge/orchestrator/service.js';
import { ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { verifyVerdict } from '../../../src/forge/scoring/verdict.js';
import { loadTemplate } from '../../../src/forge/templates/load.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { startTestApp } from '../../helpers/app.js';
import { ROOT } from '../../helpers/cli.js';

const TEMPLATE = join(ROOT, 'templates/netplus-two-subnets.yaml');

async function resultFiles(dir: string) {
  const score = await readFile(join(dir, 'score.json'));
  const evidenceName = (JSON.parse(score.toString('utf8')) as { evidence: string }).evidence;
  return {
    score,
    evidence: await readFile(join(dir, evidenceName)),
    sig: await readFile(join(dir, 'verdict.sig')),
    pub: await readFile(join(dir, 'verdict.pub')),
  };
}

/**
 * Issue 23 point 11: reset then a new completion. Each graded attempt is numbered and keeps its
 * own files and verdict; GET /v1/scores/{id} reads the latest (or ?attempt=n) without a 500; the
 * leaderboard counts the best attempt; completing again without a reset grades nothing new; each
 * reset is audited with who asked.
 */
test('reset after grading starts attempt 2; both attempts keep their files, the leaderboard keeps the best', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fg-attempts-data-'));
  const storageDir = await mkdtemp(join(tmpdir(), 'fg-attempts-store-'));
  const app = await startTestApp({ env: { FG_DATA_DIR: dataDir, FG_STORAGE_DIR: storageDir } });
  const runtime = new NetnsLabRuntime({ stateDir: join(dataDir, 'labs') });
  t.after(async () => {
    await runtime.reconcile(new Set());
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(storageDir, { recursive: true, force: true });
  });
  const template = await loadTemplate(TEMPLATE);
  const orchestrator = new Orchestrator({ store: new ScenarioStore(app.platform.db), runtime, catalog: new TemplateCatalog() });
  const lab = await orchestrator.create(app.tenantId, template, 'learner-attempts');
  const id = lab.scenario_id;
  assert.equal(lab.attempt, 1);
  const headers = { 'x-api-key': app.adminKey };
  const complete = () => app.app.inject({ method: 'POST', url: `/internal/scenario/${id}/complete`, headers, payload: { reason: 'submit' } });
  const score = (q = '') => app.app.inject({ url: `/v1/scores/${id}${q}`, headers });

  // Attempt 1: the reference solution, 100%.
  for (const [device, gw] of [
    ['h1', '10.10.1.1'],
    ['h2', '10.10.2.1'],
  ] as const) {
    const res = await runtime.exec(id, device, ['/bin/sh', '-c', `ip route add default via ${gw}`], { asLearner: true });
    assert.equal(res.exitCode, 0, res.stderr);
  }
  const first = await complete();
  assert.equal(first.statusCode, 200, first.body);
  assert.equal(first.json().attempt, 1);
  assert.equal(first.json().score.percent, 100);
  const dir1 = join(storageDir, 'scenarios', id, 'results');
  const files1 = await resultFiles(dir1);

  // Reset through the operator API: the lab is rebuilt, the scenario is on attempt 2.
  const reset = await app.app.inject({ method: 'POST', url: `/v1/scenarios/${id}/reset`, headers, payload: {} });
  assert.equal(reset.statusCode, 200, reset.body);
  assert.equal(reset.json().state, 'running');
  assert.equal(reset.json().attempt, 2);
  // Before attempt 2 is graded, the score is still attempt 1's.
  assert.equal((await score()).json().attempt, 1);

  // Attempt 2: nothing done in the fresh lab (the routes went with the reset), 0%.
  const second = await complete();
  assert.equal(second.statusCode, 200, second.body);
  assert.equal(second.json().graded, true);
  assert.equal(second.json().attempt, 2);
  assert.equal(second.json().score.percent, 0);

  // The score answers (no 500): the latest attempt by default, every attempt listed, the best named.
  const latest = await score();
  assert.equal(latest.statusCode, 200, latest.body);
  const body = latest.json();
  assert.equal(body.attempt, 2);
  assert.equal(body.score.percent, 0);
  assert.deepEqual(
    body.attempts.map((a: { attempt: number; percent: number }) => [a.attempt, a.percent]),
    [
      [1, 100],
      [2, 0],
    ],
  );
  assert.equal(body.best_attempt, 1);
  const one = await score('?attempt=1');
  assert.equal(one.statusCode, 200, one.body);
  assert.equal(one.json().score.percent, 100);
  assert.equal((await score('?attempt=3')).statusCode, 404);

  // Attempt 1's files are untouched; attempt 2 has its own, and each set verifies on its own.
  assert.deepEqual(await resultFiles(dir1), files1);
  const files2 = await resultFiles(join(dir1, 'attempt-2'));
  assert.notDeepEqual(files2.score, files1.score);
  for (const f of [files1, files2]) assert.ok(verifyVerdict({ scoreBytes: f.score, evidenceBytes: f.evidence, sigBytes: f.sig, pubBytes: f.pub }).ok);
  assert.equal(JSON.parse(files2.score.toString('utf8')).total, 0);

  // The leaderboard's rule is the best attempt: the later, lower attempt does not lower it.
  const board = await app.app.inject({ url: '/v1/scores?track=netplus&subject=learner-attempts', headers });
  assert.equal(board.statusCode, 200, board.body);
  const entry = board.json().leaderboards[0].entries.find((e: { subject: string }) => e.subject === 'learner-attempts');
  assert.equal(entry.best_percent, 100);
  assert.equal(entry.attempts, 2);
  assert.deepEqual(
    board
      .json()
      .history.scores.map((r: { attempt: number; percent: number }) => [r.attempt, r.percent])
      .sort(),
    [
      [1, 100],
      [2, 0],
    ],
  );

  // Completing again without a reset (no new work) grades nothing: same attempt, same bytes, no new row.
  const again = await complete();
  assert.equal(again.statusCode, 200, again.body);
  assert.equal(again.json().graded, false);
  assert.equal(again.json().attempt, 2);
  assert.deepEqual(await resultFiles(join(dir1, 'attempt-2')), files2);
  assert.equal((await score()).json().attempts.length, 2);

  // The reset is in the tenant's audit log, with who asked and the attempts.
  const size = await app.ledger.ledger.size(app.tenantId, 'audit');
  const audit = (await app.ledger.ledger.entries(app.tenantId, 'audit', 0, size)).map(
    (e) => e.record as { action: string; target?: string; actor?: string; details?: Record<string, unknown> },
  );
  const resets = audit.filter((r) => r.action === 'scenario.reset' && r.target === id);
  assert.equal(resets.length, 1);
  assert.match(resets[0]!.actor ?? '', /\S/);
  assert.deepEqual(resets[0]!.details, { from_state: 'scored', from_attempt: 1, attempt: 2 });
  const graded = audit.filter((r) => r.action === 'scenario.graded' && r.target === id).map((r) => r.details?.attempt);
  assert.deepEqual(graded, [1, 2]);
});

test('a reset before grading restarts the same attempt; a reset while grading is refused', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fg-attempts-data-'));
  const app = await startTestApp({ env: { FG_DATA_DIR: dataDir, FG_STORAGE_DIR: join(dataDir, 'store') } });
  const runtime = new NetnsLabRuntime({ stateDir: join(dataDir, 'labs') });
  t.after(async () => {
    await runtime.reconcile(new Set());
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const store = new ScenarioStore(app.platform.db);
  const orchestrator = new Orchestrator({ store, runtime, catalog: new TemplateCatalog() });
  const lab = await orchestrator.create(app.tenantId, await loadTemplate(TEMPLATE), 'learner-restart');
  const headers = { 'x-api-key': app.adminKey };
  const reset = await app.app.inject({ method: 'POST', url: `/v1/scenarios/${lab.scenario_id}/reset`, headers, payload: {} });
  assert.equal(reset.statusCode, 200, reset.body);
  assert.equal(reset.json().attempt, 1);
  await store.transition(app.tenantId, lab.scenario_id, 'grading');
  const refused = await app.app.inject({ method: 'POST', url: `/v1/scenarios/${lab.scenario_id}/reset`, headers, payload: {} });
  assert.equal(refused.statusCode, 409, refused.body);
  assert.equal((await store.get(app.tenantId, lab.scenario_id)).attempt, 1);
});
