import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from 'nats';
import { ensureBootstrapAdmin } from '../../../src/core/auth/bootstrap.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { loadTemplate } from '../../../src/forge/templates/load.js';
import { WorkerAgent } from '../../../src/forge/worker/agent.js';
import { FleetAuth } from '../../../src/forge/worker/channel.js';
import { createPlatform, type Platform } from '../../../src/platform/platform.js';
import { buildRole } from '../../../src/roles.js';
import { testConfig } from '../../helpers/app.js';
import { createThrowawayDatabase } from '../../helpers/postgres.js';
import { startThrowawayNats } from '../../helpers/servers.js';
import { NETPLUS_TEMPLATE } from '../access/helpers.js';

/**
 * A scoreboard in its own process (role scoreboard) grading a lab that an orchestrator in another
 * placed on a worker agent: the checks run on the worker, reached through the scoreboard's own
 * fleet client (before: it looked for the lab on its own host and found none).
 */
test('a split scoreboard grades a lab on a worker agent through the fleet', { timeout: 300_000 }, async () => {
  const nats = await startThrowawayNats();
  const db = await createThrowawayDatabase();
  const root = await mkdtemp(path.join(tmpdir(), 'fg-split-'));
  const templates = path.join(root, 'templates');
  await mkdir(templates);
  await copyFile(NETPLUS_TEMPLATE, path.join(templates, 'netplus-two-subnets.yaml'));
  const fleetSecret = randomBytes(32).toString('base64');
  const shared = {
    FG_DB_URL: db.url,
    FG_NATS_URL: nats.url,
    FG_ORCHESTRATOR_PLACEMENT: 'workers',
    FG_FLEET_SECRET: fleetSecret,
    FG_VARIABLES_SECRET: randomBytes(32).toString('base64'),
    FG_TEMPLATES_DIR: templates,
    FG_STORAGE_DIR: path.join(root, 'storage'),
  };
  const workerRuntime = new NetnsLabRuntime({ stateDir: path.join(root, 'worker', 'labs') });
  const nc = await connect({ servers: nats.url });
  const agent = new WorkerAgent({
    nc,
    runtime: workerRuntime,
    workerId: `sp-${randomBytes(3).toString('hex')}`,
    capacity: 2,
    heartbeatMs: 2000,
    auth: new FleetAuth(Buffer.from(fleetSecret)),
  });
  const platforms: Platform[] = [];
  try {
    await agent.start();
    const orchestratorPlatform = await createPlatform(testConfig({ ...shared, FG_DATA_DIR: path.join(root, 'orch') }));
    platforms.push(orchestratorPlatform);
    const orch = await buildRole(orchestratorPlatform, 'orchestrator');
    const { tenantId, key } = await ensureBootstrapAdmin(orchestratorPlatform.db, orchestratorPlatform.config.bootstrapTenant, orch.ledger.audit);
    const scorePlatform = await createPlatform(testConfig({ ...shared, FG_DATA_DIR: path.join(root, 'score') }));
    platforms.push(scorePlatform);
    const scoreboard = await buildRole(scorePlatform, 'scoreboard');

    const mod = orch.forge.orchestrator!;
    const s = await mod.orchestrator.create(tenantId, await loadTemplate(NETPLUS_TEMPLATE), 'split-learner');
    assert.equal(s.state, 'running', s.error ?? '');
    assert.deepEqual(
      (await workerRuntime.list()).map((l) => l.scenarioId),
      [s.scenario_id],
    );
    // The learner's work: h1 gets its gateway, h2 does not.
    const done = await mod.orchestrator.exec(tenantId, s.scenario_id, 'h1', ['ip', 'route', 'add', 'default', 'via', '10.10.1.1']);
    assert.equal(done.exitCode, 0, done.stderr);

    const res = await scoreboard.app.inject({
      method: 'POST',
      url: `/internal/scenario/${s.scenario_id}/complete`,
      headers: { 'x-api-key': key! },
      payload: { reason: 'operator' },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ graded: boolean; score: { criteria: Array<{ id: string; status: string }> } }>();
    assert.equal(body.graded, true);
    const status = Object.fromEntries(body.score.criteria.map((c) => [c.id, c.status]));
    assert.equal(status['h1-gateway'], 'passed', JSON.stringify(status));
    assert.notEqual(status['h2-gateway'], 'passed', JSON.stringify(status));
    // Nothing was looked for on the scoreboard's own host.
    assert.deepEqual(await new NetnsLabRuntime({ stateDir: path.join(root, 'score', 'labs') }).list(), []);
    await mod.orchestrator.destroy(tenantId, s.scenario_id);
  } finally {
    for (const p of platforms.reverse()) await p.close().catch(() => undefined);
    await agent.stop();
    await workerRuntime.reconcile(new Set());
    await nc.drain().catch(() => undefined);
    await nats.stop();
    await nats.dispose();
    await db.drop();
    await rm(root, { recursive: true, force: true });
  }
});
