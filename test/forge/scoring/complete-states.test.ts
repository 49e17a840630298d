import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { newScenarioId } from '../../../src/forge/orchestrator/service.js';
import { ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { readEvidenceArchive } from '../../../src/forge/scoring/evidence-archive.js';
import { ScoringService } from '../../../src/forge/scoring/service.js';
import { loadVerdictSigningKey } from '../../../src/forge/scoring/verdict.js';
import { FilesystemStorage } from '../../../src/platform/storage/filesystem.js';
import { AppError } from '../../../src/platform/http/problem.js';
import { loadTemplate } from '../../../src/forge/templates/load.js';
import { startTestApp } from '../../helpers/app.js';
import { ROOT } from '../../helpers/cli.js';

/**
 * The completion endpoint's state machine, on scenario rows whose lab does not exist (no lab is
 * needed to prove it): only a running scenario is graded, concurrent completions grade once,
 * and checks that cannot reach a lab are `error`, worth nothing.
 */
test('POST /internal/scenario/{id}/complete: running only, one grading under concurrency, 404 across tenants', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fg-complete-data-'));
  const storageDir = await mkdtemp(join(tmpdir(), 'fg-complete-store-'));
  const app = await startTestApp({ env: { FG_DATA_DIR: dataDir, FG_STORAGE_DIR: storageDir } });
  t.after(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(storageDir, { recursive: true, force: true });
  });
  const template = await loadTemplate(join(ROOT, 'templates/netplus-two-subnets.yaml'));
  const store = new ScenarioStore(app.platform.db);
  const scenario = async (state: 'pending' | 'running', version = template.version) => {
    const id = newScenarioId();
    await store.insert(app.tenantId, {
      scenario_id: id,
      template_id: template.id,
      template_version: version,
      track: template.track,
      subject: 'bob',
      expires_at: new Date(Date.now() + 3_600_000),
    });
    if (state === 'running') {
      await store.transition(app.tenantId, id, 'provisioning');
      await store.transition(app.tenantId, id, 'running', { devices: [] });
    }
    return id;
  };
  const complete = (id: string) =>
    app.app.inject({ method: 'POST', url: `/internal/scenario/${id}/complete`, headers: { 'x-api-key': app.adminKey }, payload: { reason: 'ttl' } });

  const pending = await complete(await scenario('pending'));
  assert.equal(pending.statusCode, 409);
  assert.equal(pending.json().reason, 'illegal_transition');

  const unknownVersion = await scenario('running', 'sha256-0000000000000000');
  const noTemplate = await complete(unknownVersion);
  assert.equal(noTemplate.statusCode, 409);
  assert.equal(noTemplate.json().reason, 'template_unavailable');

  assert.equal((await complete('scn_doesnotexist00')).statusCode, 404);

  const id = await scenario('running');
  // Terminal recordings stored by the access layer go into the evidence, scrubbed; binary files stay behind.
  const recordings = join(storageDir, 'scenarios', id, 'recordings');
  await mkdir(recordings, { recursive: true });
  await writeFile(
    join(recordings, 'h1-1.cast'),
    '{"version":2,"width":80,"height":24,"timestamp":0,"title":"h1","env":{}}\n[0.5,"o","mail carol@example.org\\r\\n"]\n',
  );
  await writeFile(join(recordings, 'core.bin'), Buffer.from([0, 1, 2, 3]));
  const answers = await Promise.all([complete(id), complete(id), complete(id)]);
  assert.ok(
    answers.every((a) => a.statusCode === 200 || a.statusCode === 409),
    answers.map((a) => a.body).join('\n'),
  );
  const fresh = answers.filter((a) => a.statusCode === 200 && a.json().graded === true);
  assert.equal(fresh.length, 1, 'graded exactly once');
  const score = fresh[0]!.json().score;
  // No lab behind the row: every check errors, nothing is awarded, dependants are skipped.
  assert.deepEqual(
    score.criteria.map((c: { status: string }) => c.status),
    ['error', 'error', 'skipped', 'skipped'],
  );
  assert.equal(score.total, 0);
  for (const a of answers.filter((x) => x.statusCode === 200)) assert.deepEqual(a.json().score, score);
  const later = await complete(id);
  assert.equal(later.statusCode, 200);
  assert.equal(later.json().graded, false);
  assert.deepEqual(later.json().score, score);
  assert.deepEqual((await readdir(join(storageDir, 'scenarios', id, 'results'))).sort(), [
    'audit.jsonl',
    'evidence.tar.zst',
    'score.json',
    'verdict.pub',
    'verdict.sig',
  ]);
  const evidence = await readEvidenceArchive(await readFile(join(storageDir, 'scenarios', id, 'results', 'evidence.tar.zst')));
  const cast = evidence.find((e) => e.name === 'recordings/h1-1.cast');
  assert.ok(cast, evidence.map((e) => e.name).join(', '));
  assert.match(Buffer.from(cast.bytes).toString('utf8'), /mail \[REDACTED:email\]/);
  assert.equal(
    evidence.some((e) => e.name === 'recordings/core.bin'),
    false,
  );
  const report = JSON.parse(Buffer.from(evidence.find((e) => e.name === 'sanitizer-report.json')!.bytes).toString('utf8')) as { withheld: string[] };
  assert.deepEqual(report.withheld, ['recordings/core.bin']);
  // The grading is in the tenant's audit log.
  const size = await app.ledger.ledger.size(app.tenantId, 'audit');
  const entries = await app.ledger.ledger.entries(app.tenantId, 'audit', 0, size);
  const graded = entries.map((e) => e.record as { action?: string; target?: string }).filter((r) => r.action === 'scenario.graded' && r.target === id);
  assert.equal(graded.length, 1);

  await app.auth.store.createTenant('another');
  const otherKey = (await app.auth.store.createKey({ tenantId: 'another', scopes: ['admin'] })).key;
  const foreign = await app.app.inject({ method: 'POST', url: `/internal/scenario/${id}/complete`, headers: { 'x-api-key': otherKey }, payload: {} });
  assert.equal(foreign.statusCode, 404);
  assert.equal((await app.app.inject({ method: 'POST', url: `/internal/scenario/${id}/complete`, payload: {} })).statusCode, 401);
});

test('a grading left unfinished is refused while fresh, then taken over: re-graded, or finished from its stored result', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fg-stale-data-'));
  const storageDir = await mkdtemp(join(tmpdir(), 'fg-stale-store-'));
  const app = await startTestApp({ env: { FG_DATA_DIR: dataDir, FG_STORAGE_DIR: storageDir } });
  t.after(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(storageDir, { recursive: true, force: true });
  });
  const template = await loadTemplate(join(ROOT, 'templates/netplus-two-subnets.yaml'));
  const store = new ScenarioStore(app.platform.db);
  const running = async () => {
    const id = newScenarioId();
    await store.insert(app.tenantId, {
      scenario_id: id,
      template_id: template.id,
      template_version: template.version,
      track: template.track,
      subject: 'dora',
      expires_at: new Date(Date.now() + 3_600_000),
    });
    await store.transition(app.tenantId, id, 'provisioning');
    await store.transition(app.tenantId, id, 'running', { devices: [] });
    return id;
  };
  const signingKey = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
  const service = (scenarios: Pick<ScenarioStore, 'get' | 'transition'>, clock = () => new Date()) =>
    new ScoringService({
      db: app.platform.db,
      scenarios,
      runtime: new NetnsLabRuntime({ stateDir: join(dataDir, 'labs') }),
      templates: (id, version) => (id === template.id && version === template.version ? template : undefined),
      storage: new FilesystemStorage(storageDir),
      signingKey,
      audit: app.ledger.audit,
      clock,
    });
  const later = () => new Date(Date.now() + 11 * 60_000);

  // A grader that died mid-way (before recording anything): fresh -> 409, stale -> graded again.
  const a = await running();
  await store.transition(app.tenantId, a, 'grading');
  await assert.rejects(
    service(store).complete(app.tenantId, a, { reason: 'ttl', actor: 'test' }),
    (e: unknown) => e instanceof AppError && e.extensions.reason === 'grading_in_progress',
  );
  const regraded = await service(store, later).complete(app.tenantId, a, { reason: 'ttl', actor: 'test' });
  assert.equal(regraded.graded, true);
  assert.equal((await store.get(app.tenantId, a)).state, 'scored');

  // A grader that died after storing the result, before marking the scenario scored.
  const b = await running();
  const dying: Pick<ScenarioStore, 'get' | 'transition'> = {
    get: (tenant, id) => store.get(tenant, id),
    transition: async (tenant, id, to, patch) => {
      if (to === 'scored' || to === 'failed') throw new Error('the grader process stopped');
      return store.transition(tenant, id, to, patch);
    },
  };
  await assert.rejects(service(dying).complete(app.tenantId, b, { reason: 'submit', actor: 'test' }), /stopped/);
  assert.equal((await store.get(app.tenantId, b)).state, 'grading');
  const stored = await service(store).score(app.tenantId, b);
  const finished = await service(store, later).complete(app.tenantId, b, { reason: 'submit', actor: 'test' });
  assert.equal(finished.graded, false, 'the stored result is used, not a new grading');
  assert.deepEqual(finished.score, stored.score);
  assert.equal((await store.get(app.tenantId, b)).state, 'scored');
});
