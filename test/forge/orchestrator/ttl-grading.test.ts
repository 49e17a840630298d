import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { AuditTrail } from '../../../src/ledger/audit.js';
import { LedgerService } from '../../../src/ledger/service.js';
import { loadLedgerSigningKey } from '../../../src/ledger/signing-key.js';
import { Orchestrator } from '../../../src/forge/orchestrator/service.js';
import { ScoringService } from '../../../src/forge/scoring/service.js';
import { scoreStore } from '../../../src/forge/scoring/store.js';
import { loadVerdictSigningKey } from '../../../src/forge/scoring/verdict.js';
import { FilesystemStorage } from '../../../src/platform/storage/filesystem.js';
import { parseTemplate } from '../../../src/forge/templates/load.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { makeRig, namespacesOf, type Rig } from './helpers.js';

/** Two hosts; one point for /root/done on h1 (the learner's work), TTL five minutes. */
const template = parseTemplate(`id: ttl-graded
title: TTL graded
track: netplus
tier: basic
ttl_minutes: 5
topology:
  networks: [{ name: lan, cidr: 10.78.0.0/24 }]
  devices:
    - { name: h1, kind: host, interfaces: [{ network: lan, address: 10.78.0.10/24 }] }
    - { name: h2, kind: host, interfaces: [{ network: lan, address: 10.78.0.11/24 }] }
tasks: [create /root/done on h1]
successCriteria: [{ id: done, description: the file exists, points: 1, check: { type: command, device: h1, context: mount, run: "test -f /root/done" } }]
`);

async function gradingRig(t: TestContext): Promise<{ rig: Rig; orch: Orchestrator; scoring: ScoringService; storageDir: string }> {
  const rig = await makeRig(t);
  const storageDir = await mkdtemp(join(tmpdir(), 'fg-ttl-store-'));
  t.after(() => rm(storageDir, { recursive: true, force: true }));
  const catalog = new TemplateCatalog();
  const ledger = new LedgerService(rig.db, await loadLedgerSigningKey({ keyPath: undefined, dataDir: undefined }));
  const scoring = new ScoringService({
    db: rig.db,
    scenarios: rig.store,
    runtime: rig.runtime,
    templates: (id, version) => catalog.get(id, version),
    storage: new FilesystemStorage(storageDir),
    signingKey: await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true }),
    audit: new AuditTrail(ledger),
    clock: () => rig.clock.now,
  });
  const orch = new Orchestrator({
    store: rig.store,
    runtime: rig.runtime,
    catalog,
    clock: () => rig.clock.now,
    gradeAtExpiry: async (tenantId, scenarioId) => {
      await scoring.complete(tenantId, scenarioId, { reason: 'ttl', actor: 'system:ttl' });
    },
  });
  return { rig, orch, scoring, storageDir };
}

test("TTL end grades a running scenario (reason ttl, the learner's work counted) before its lab is destroyed", async (t) => {
  const { rig, orch, storageDir } = await gradingRig(t);
  const s = await orch.create(rig.tenantId, template, 'dora');
  const work = await orch.exec(rig.tenantId, s.scenario_id, 'h1', ['/bin/sh', '-c', 'touch /root/done'], { asLearner: true });
  assert.equal(work.exitCode, 0, work.stderr);

  rig.clock.now = new Date(Date.parse(s.expires_at) - 1);
  assert.deepEqual(await orch.sweepExpired(), []);
  assert.equal((await orch.get(rig.tenantId, s.scenario_id)).state, 'running');

  rig.clock.now = new Date(Date.parse(s.expires_at) + 1);
  assert.deepEqual(await orch.sweepExpired(), [s.scenario_id]);
  assert.equal((await orch.get(rig.tenantId, s.scenario_id)).state, 'expired');
  assert.deepEqual(namespacesOf(rig.runtime, s.scenario_id), [], 'the lab is gone after grading');
  const score = await rig.db.withTenant(rig.tenantId, (tx) => scoreStore.get(tx, s.scenario_id));
  assert.ok(score, 'a scores row was written');
  assert.equal(score.reason, 'ttl');
  assert.equal(Number(score.total), 1, "the check ran against the live lab: the learner's file was seen");
  assert.ok((await readdir(join(storageDir, 'scenarios', s.scenario_id, 'results'))).includes('score.json'));
});

test('the sweep never expires a scenario that is being graded; it expires it once grading is done', async (t) => {
  const { rig, orch, scoring } = await gradingRig(t);
  const s = await orch.create(rig.tenantId, template, 'emil');
  // A grader (learner submit) holds the scenario in `grading` right now.
  await rig.store.transition(rig.tenantId, s.scenario_id, 'grading');
  rig.clock.now = new Date(Date.parse(s.expires_at) + 1000);
  assert.deepEqual(await orch.sweepExpired(), []);
  assert.equal((await orch.get(rig.tenantId, s.scenario_id)).state, 'grading');
  assert.equal(namespacesOf(rig.runtime, s.scenario_id).length, 3, 'the grader still has its lab');

  // That grading is abandoned (its grader died): once stale, the scoring service takes it over
  // at the next sweep, scores it, and the scenario then expires.
  rig.clock.now = new Date(rig.clock.now.getTime() + 11 * 60_000);
  assert.deepEqual(await orch.sweepExpired(), [s.scenario_id]);
  assert.equal((await orch.get(rig.tenantId, s.scenario_id)).state, 'expired');
  assert.deepEqual(namespacesOf(rig.runtime, s.scenario_id), []);
  const again = await scoring.complete(rig.tenantId, s.scenario_id, { reason: 'operator', actor: 'test' }).catch((e: unknown) => e);
  assert.ok(again instanceof Error, 'an expired scenario is not graded again');
});

test('without a grader the sweep expires running scenarios directly and leaves grading ones alone', async (t) => {
  const rig = await makeRig(t);
  const orch = new Orchestrator({ store: rig.store, runtime: rig.runtime, catalog: new TemplateCatalog(), clock: () => rig.clock.now });
  const a = await orch.create(rig.tenantId, template, 'finn');
  const b = await orch.create(rig.tenantId, template, 'gus');
  await rig.store.transition(rig.tenantId, b.scenario_id, 'grading');
  rig.clock.now = new Date(Date.parse(a.expires_at) + 1);
  assert.deepEqual(await orch.sweepExpired(), [a.scenario_id]);
  assert.equal((await orch.get(rig.tenantId, b.scenario_id)).state, 'grading');
  await orch.destroy(rig.tenantId, b.scenario_id);
});
