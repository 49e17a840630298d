import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Orchestrator } from '../../../src/forge/orchestrator/service.js';
import { ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { readEvidenceArchive } from '../../../src/forge/scoring/evidence-archive.js';
import { verifyVerdict } from '../../../src/forge/scoring/verdict.js';
import { loadTemplate } from '../../../src/forge/templates/load.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { canonicalize } from '../../../src/platform/crypto/canonical-json.js';
import { startTestApp } from '../../helpers/app.js';
import { ROOT, runCli } from '../../helpers/cli.js';

const TEMPLATE = join(ROOT, 'templates/netplus-two-subnets.yaml');

/**
 * The scoreboard end to end on the netplus template: one lab left untouched grades 0%, one with
 * the reference solution applied grades 100%, through POST /internal/scenario/{id}/complete;
 * the artefacts verify offline with `frostgate verify-verdict`, grading again returns the same
 * bytes, and scores are visible only in the tenant that owns them.
 */
test('netplus-two-subnets: 0% untouched, 100% after the reference solution, signed and idempotent', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fg-grade-data-'));
  const storageDir = await mkdtemp(join(tmpdir(), 'fg-grade-store-'));
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
  const [untouched, solved] = await Promise.all([
    orchestrator.create(app.tenantId, template, 'learner-untouched'),
    orchestrator.create(app.tenantId, template, 'learner-solved'),
  ]);

  // The reference solution, typed by the learner in each host's shell.
  for (const [device, gw] of [
    ['h1', '10.10.1.1'],
    ['h2', '10.10.2.1'],
  ] as const) {
    const res = await runtime.exec(solved.scenario_id, device, ['/bin/sh', '-c', `ip route add default via ${gw}`], { asLearner: true });
    assert.equal(res.exitCode, 0, res.stderr);
  }

  const complete = (id: string, body: Record<string, unknown> = {}, key = app.adminKey) =>
    app.app.inject({ method: 'POST', url: `/internal/scenario/${id}/complete`, headers: { 'x-api-key': key }, payload: body });

  const zero = await complete(untouched.scenario_id, { reason: 'ttl' });
  assert.equal(zero.statusCode, 200, zero.body);
  const zeroBody = zero.json();
  assert.equal(zeroBody.score.percent, 0);
  assert.deepEqual(
    zeroBody.score.criteria.map((c: { id: string; status: string }) => [c.id, c.status]),
    [
      ['h1-gateway', 'failed'],
      ['h2-gateway', 'failed'],
      ['h1-reaches-h2', 'skipped'],
      ['h2-reaches-h1', 'skipped'],
    ],
  );

  const full = await complete(solved.scenario_id, { reason: 'submit' });
  assert.equal(full.statusCode, 200, full.body);
  const body = full.json();
  assert.equal(body.graded, true);
  assert.equal(body.score.total, 100);
  assert.equal(body.score.percent, 100);
  assert.equal(body.score.template.id, 'netplus-two-subnets');
  assert.equal(body.score.template.version, template.version);
  assert.equal(body.score.subject, 'learner-solved');
  assert.equal((await orchestrator.get(app.tenantId, solved.scenario_id)).state, 'scored');

  // The five artefacts under storage/scenarios/{id}/results/, score.json canonical.
  const dir = join(storageDir, 'scenarios', solved.scenario_id, 'results');
  assert.deepEqual((await readdir(dir)).sort(), ['audit.jsonl', 'evidence.tar.zst', 'score.json', 'verdict.pub', 'verdict.sig']);
  const files = {
    score: await readFile(join(dir, 'score.json')),
    evidence: await readFile(join(dir, 'evidence.tar.zst')),
    sig: await readFile(join(dir, 'verdict.sig')),
    pub: await readFile(join(dir, 'verdict.pub')),
  };
  assert.equal(files.score.toString('utf8'), canonicalize(JSON.parse(files.score.toString('utf8'))));
  const entries = (await readEvidenceArchive(files.evidence)).map((e) => e.name);
  for (const name of ['checks/h1-gateway.json', 'checks/h2-reaches-h1.json', 'answers.json', 'audit.jsonl', 'sanitizer-report.json'])
    assert.ok(entries.includes(name), `${name} in ${entries.join(', ')}`);
  const audit = (await readFile(join(dir, 'audit.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event?: string });
  assert.deepEqual([audit[0]!.event, audit.at(-1)!.event], ['grading_started', 'scenario_graded']);

  // Pinned to the key set the scoreboard serves, not to the verdict.pub beside the verdict.
  const keySet = await app.app.inject({ url: '/v1/verdicts/keys', headers: { 'x-api-key': app.adminKey } });
  assert.equal(keySet.statusCode, 200, keySet.body);
  await writeFile(join(storageDir, 'pinned-verdict-keys.json'), keySet.body);
  const cli = await runCli([
    'verify-verdict',
    join(dir, 'score.json'),
    join(dir, 'evidence.tar.zst'),
    join(dir, 'verdict.sig'),
    join(dir, 'verdict.pub'),
    '--keys',
    join(storageDir, 'pinned-verdict-keys.json'),
  ]);
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  assert.match(cli.stdout, /^PASS: verdict verification succeeded$/m);

  // Grading again changes nothing: same score, same bytes on disk.
  const again = await complete(solved.scenario_id, { reason: 'submit' });
  assert.equal(again.statusCode, 200, again.body);
  assert.equal(again.json().graded, false);
  assert.deepEqual(again.json().score, body.score);
  assert.deepEqual(await readFile(join(dir, 'evidence.tar.zst')), files.evidence);
  assert.deepEqual(await readFile(join(dir, 'verdict.sig')), files.sig);

  // Scores: leaderboard per track and the subject's history, tenant-bound.
  const scores = await app.app.inject({ method: 'GET', url: '/v1/scores?track=netplus&subject=learner-solved', headers: { 'x-api-key': app.adminKey } });
  assert.equal(scores.statusCode, 200, scores.body);
  const board = scores.json();
  assert.deepEqual(
    board.leaderboards[0].entries.map((e: { subject: string; best_percent: number }) => [e.subject, e.best_percent]),
    [
      ['learner-solved', 100],
      ['learner-untouched', 0],
    ],
  );
  assert.deepEqual(
    board.history.scores.map((s: { scenario_id: string }) => s.scenario_id),
    [solved.scenario_id],
  );
  const one = await app.app.inject({ method: 'GET', url: `/v1/scores/${solved.scenario_id}`, headers: { 'x-api-key': app.adminKey } });
  assert.equal(one.statusCode, 200, one.body);
  assert.deepEqual(one.json().score, body.score);

  await app.auth.store.createTenant('other-tenant');
  const otherKey = (await app.auth.store.createKey({ tenantId: 'other-tenant', scopes: ['admin'] })).key;
  const foreign = await app.app.inject({ method: 'GET', url: `/v1/scores/${solved.scenario_id}`, headers: { 'x-api-key': otherKey } });
  assert.equal(foreign.statusCode, 404);
  const foreignBoard = (await app.app.inject({ method: 'GET', url: '/v1/scores?track=netplus', headers: { 'x-api-key': otherKey } })).json();
  assert.deepEqual(foreignBoard.leaderboards[0].entries, []);
  assert.equal((await complete(solved.scenario_id, {}, otherKey)).statusCode, 404);
  // A key without forge:operate cannot trigger grading.
  const reader = (await app.auth.store.createKey({ tenantId: app.tenantId, scopes: ['forge:spawn'] })).key;
  assert.equal((await complete(untouched.scenario_id, {}, reader)).statusCode, 403);

  await t.test('any changed byte of any of the four files fails verification, naming the file', async () => {
    for (const [name, bytes] of Object.entries(files) as Array<[keyof typeof files, Buffer]>) {
      for (let i = 0; i < bytes.length; i++) {
        const changed = Buffer.from(bytes);
        changed[i] = changed[i]! ^ 0x01;
        const res = verifyVerdict({
          scoreBytes: files.score,
          evidenceBytes: files.evidence,
          sigBytes: files.sig,
          pubBytes: files.pub,
          [`${name}Bytes`]: changed,
        });
        assert.equal(res.ok, false, `${name} byte ${i} changed but verification passed`);
      }
    }
    // Through the CLI: one changed byte per file, each failure names its file.
    for (const name of ['score.json', 'evidence.tar.zst', 'verdict.sig', 'verdict.pub']) {
      const copy = await mkdtemp(join(tmpdir(), 'fg-verdict-'));
      try {
        for (const f of ['score.json', 'evidence.tar.zst', 'verdict.sig', 'verdict.pub']) await writeFile(join(copy, f), await readFile(join(dir, f)));
        const bytes = await readFile(join(copy, name));
        bytes[Math.floor(bytes.length / 2)]! ^= 0x20;
        await writeFile(join(copy, name), bytes);
        const res = await runCli([
          'verify-verdict',
          ...['score.json', 'evidence.tar.zst', 'verdict.sig', 'verdict.pub'].map((f) => join(copy, f)),
          '--keys',
          join(storageDir, 'pinned-verdict-keys.json'),
        ]);
        assert.equal(res.code, 1, `${name}: ${res.stdout}`);
        assert.doesNotMatch(res.stdout, /PASS/);
        assert.match(res.stdout, new RegExp(`^FAIL: ${join(copy, name).replace(/[.]/g, '\\.')}: `, 'm'));
      } finally {
        await rm(copy, { recursive: true, force: true });
      }
    }
  });
});
