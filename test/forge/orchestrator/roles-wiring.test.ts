import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { newScenarioId } from '../../../src/forge/orchestrator/service.js';
import { scoreStore } from '../../../src/forge/scoring/store.js';
import { loadTemplate } from '../../../src/forge/templates/load.js';
import { createPlatform } from '../../../src/platform/platform.js';
import { buildRole } from '../../../src/roles.js';
import { ensureBootstrapAdmin } from '../../../src/core/auth/bootstrap.js';
import { testConfig } from '../../helpers/app.js';
import { ROOT } from '../../helpers/cli.js';

test('role all: the TTL sweep grades a running scenario with the scoreboard before it expires', async () => {
  const storageDir = await mkdtemp(path.join(tmpdir(), 'fg-ttl-wiring-'));
  const platform = await createPlatform(testConfig({ FG_STORAGE_DIR: storageDir }), { embeddedDir: 'memory' });
  try {
    const role = await buildRole(platform, 'all');
    const { tenantId } = await ensureBootstrapAdmin(platform.db, platform.config.bootstrapTenant, role.ledger.audit);
    const orchestrator = role.forge.orchestrator!.orchestrator;
    const store = role.forge.orchestrator!.store;
    const template = await loadTemplate(path.join(ROOT, 'templates/netplus-two-subnets.yaml'));
    // A running row whose TTL passed (no lab behind it: its checks error, which still grades).
    const id = newScenarioId();
    await store.insert(tenantId, {
      scenario_id: id,
      template_id: template.id,
      template_version: template.version,
      track: template.track,
      subject: 'ivy',
      expires_at: new Date(Date.now() - 1000),
    });
    await store.transition(tenantId, id, 'provisioning');
    await store.transition(tenantId, id, 'running', { devices: [] });

    assert.deepEqual(await orchestrator.sweepExpired(), [id]);
    assert.equal((await store.get(tenantId, id)).state, 'expired');
    const score = await platform.db.withTenant(tenantId, (tx) => scoreStore.get(tx, id));
    assert.equal(score?.reason, 'ttl', 'graded by the scoreboard of this process, reason ttl');
  } finally {
    await platform.close();
    await rm(storageDir, { recursive: true, force: true });
  }
});
