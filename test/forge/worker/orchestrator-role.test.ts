import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from 'nats';
import type { WorkerFleet } from '../../../src/forge/orchestrator/fleet.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { WorkerAgent } from '../../../src/forge/worker/agent.js';
import { createPlatform } from '../../../src/platform/platform.js';
import { buildRole } from '../../../src/roles.js';
import { ensureBootstrapAdmin } from '../../../src/core/auth/bootstrap.js';
import { tinyTemplate } from '../orchestrator/helpers.js';
import { testConfig } from '../../helpers/app.js';
import { FleetAuth } from '../../../src/forge/worker/channel.js';
import { startThrowawayNats } from '../../helpers/servers.js';

test('role orchestrator with FG_ORCHESTRATOR_PLACEMENT=workers builds labs on a worker agent, not locally', { timeout: 120_000 }, async () => {
  const nats = await startThrowawayNats();
  const workerDir = await mkdtemp(path.join(tmpdir(), 'fg-wrole-'));
  const workerRuntime = new NetnsLabRuntime({ stateDir: path.join(workerDir, 'labs') });
  const nc = await connect({ servers: nats.url });
  const secret = randomBytes(32).toString('base64');
  // The role's fleet reads adverts once a second and calls a worker dead after 5 heartbeats: at
  // 200 ms that was one missed poll, which a loaded CI machine (this test shares its process with
  // the lab build and PGlite) produced. This test is about placement, not death detection.
  const agent = new WorkerAgent({
    nc,
    runtime: workerRuntime,
    workerId: `wr-${randomBytes(3).toString('hex')}`,
    capacity: 3,
    heartbeatMs: 2000,
    auth: new FleetAuth(Buffer.from(secret)),
  });
  const platform = await createPlatform(testConfig({ FG_NATS_URL: nats.url, FG_ORCHESTRATOR_PLACEMENT: 'workers', FG_FLEET_SECRET: secret }), {
    embeddedDir: 'memory',
  });
  try {
    await agent.start();
    const role = await buildRole(platform, 'orchestrator');
    const { tenantId } = await ensureBootstrapAdmin(platform.db, platform.config.bootstrapTenant, role.ledger.audit);
    const mod = role.forge.orchestrator!;
    assert.equal(mod.runtime.driver, 'workers');
    const fleet = mod.runtime as WorkerFleet;
    assert.deepEqual(
      fleet.liveWorkers().map((w) => [w.workerId, w.free]),
      [[agent.workerId, 3]],
    );

    const s = await mod.orchestrator.create(tenantId, tinyTemplate(`wr-${randomBytes(3).toString('hex')}`), 'jo');
    assert.equal(s.state, 'running', s.error ?? '');
    assert.deepEqual(
      (await workerRuntime.list()).map((l) => l.scenarioId),
      [s.scenario_id],
      'built by the worker agent',
    );
    const ping = await mod.orchestrator.exec(tenantId, s.scenario_id, 'h1', ['ping', '-c', '1', '-W', '2', '10.77.0.11']);
    assert.equal(ping.exitCode, 0, ping.stdout + ping.stderr);
    const health = await platform.health.run();
    assert.match(JSON.stringify(health), new RegExp(`"workerId":"${agent.workerId}"`));
    // Readiness reports what placement can still use: one worker, its capacity, one lab running.
    const capacity = (health.checks.labs as { capacity?: { workers: number; labs: number; running: number; free: number } }).capacity;
    assert.equal(capacity?.workers, 1);
    assert.equal(capacity?.running, 1);
    assert.equal(capacity.free, capacity.labs - 1);
    await mod.orchestrator.destroy(tenantId, s.scenario_id);
    assert.deepEqual(await workerRuntime.list(), []);
  } finally {
    await platform.close();
    await agent.stop();
    await nc.close();
    await workerRuntime.reconcile(new Set());
    await rm(workerDir, { recursive: true, force: true });
    await nats.stop();
    await nats.dispose();
  }
});
