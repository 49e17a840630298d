import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { KeyStore } from '../../../src/core/auth/store.js';
import { canTransition, ScenarioStateError, SCENARIO_STATES, TRANSITIONS } from '../../../src/forge/orchestrator/states.js';
import { ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { openDatabase } from '../../../src/platform/db/database.js';
import { AppError } from '../../../src/platform/http/problem.js';

test('the lifecycle table: forward path, reset, and final states', () => {
  const path = ['pending', 'provisioning', 'running', 'grading', 'scored', 'destroyed'] as const;
  for (let i = 0; i + 1 < path.length; i++) assert.ok(canTransition(path[i]!, path[i + 1]!), `${path[i]} -> ${path[i + 1]}`);
  assert.ok(canTransition('running', 'provisioning'), 'reset');
  assert.ok(canTransition('running', 'expired'));
  assert.deepEqual(TRANSITIONS.destroyed, []);
  assert.deepEqual(TRANSITIONS.expired, []);
  assert.ok(!canTransition('pending', 'running'), 'no skipping provisioning');
  assert.ok(!canTransition('scored', 'grading'));
  assert.ok(!canTransition('failed', 'running'));
  for (const s of SCENARIO_STATES) assert.ok(!canTransition(s, s), `${s} -> ${s} is not a transition`);
});

test('the store refuses illegal transitions with a 409 ScenarioStateError and hides other tenants (404)', async (t) => {
  const db = await openDatabase({ embeddedDir: 'memory', migrate: true });
  t.after(() => db.close());
  const keys = new KeyStore(db);
  const [a, b] = [`ta-${randomBytes(3).toString('hex')}`, `tb-${randomBytes(3).toString('hex')}`];
  await keys.createTenant(a);
  await keys.createTenant(b);
  const store = new ScenarioStore(db);
  const id = `scn_${randomBytes(8).toString('hex')}`;
  const row = await store.insert(a, {
    scenario_id: id,
    template_id: 'x-lab',
    template_version: '1',
    track: 'netplus',
    subject: 'alice',
    expires_at: new Date(Date.now() + 60_000),
  });
  assert.equal(row.state, 'pending');

  await assert.rejects(store.transition(a, id, 'running'), (err: unknown) => {
    assert.ok(err instanceof ScenarioStateError);
    assert.equal(err.status, 409);
    assert.equal(err.code, 'conflict');
    assert.equal(err.reason, 'illegal_transition');
    assert.equal(err.from, 'pending');
    assert.match(err.message, /is pending; it cannot move to running/);
    return true;
  });
  assert.equal((await store.get(a, id)).state, 'pending', 'a refused transition changes nothing');
  await store.transition(a, id, 'provisioning');
  const running = await store.transition(a, id, 'running', { devices: [{ name: 'h1', kind: 'host', addresses: [] }], runtime_ref: 'netns:x' });
  assert.equal(running.state, 'running');
  assert.deepEqual(running.devices, [{ name: 'h1', kind: 'host', addresses: [] }]);
  await store.transition(a, id, 'destroyed');
  await assert.rejects(store.transition(a, id, 'destroyed'), ScenarioStateError);
  await assert.rejects(store.transition(a, id, 'provisioning'), ScenarioStateError);

  // Tenant B neither sees nor moves tenant A's scenario.
  await assert.rejects(store.get(b, id), (err: unknown) => err instanceof AppError && err.status === 404);
  await assert.rejects(store.transition(b, id, 'failed'), (err: unknown) => err instanceof AppError && err.status === 404);
  assert.deepEqual(await store.list(b), []);
  assert.equal((await store.list(a)).length, 1);
});

test('the database itself refuses unknown states and bad tenant ids', async (t) => {
  const db = await openDatabase({ embeddedDir: 'memory', migrate: true });
  t.after(() => db.close());
  const tenant = `tc-${randomBytes(3).toString('hex')}`;
  await new KeyStore(db).createTenant(tenant);
  const base = { template_id: 'x', template_version: '1', track: 'netplus', subject: 's', expires_at: new Date(), tenant_id: tenant };
  await assert.rejects(
    db.withTenant(tenant, (tx) =>
      tx
        .insertInto('scenarios')
        .values({ ...base, scenario_id: `scn_${randomBytes(6).toString('hex')}`, state: 'paused' as 'running' })
        .execute(),
    ),
    /check constraint/,
  );
  // Rows of another tenant cannot be written from this tenant's transaction (RLS WITH CHECK).
  await assert.rejects(
    db.withTenant(tenant, (tx) =>
      tx
        .insertInto('scenarios')
        .values({ ...base, tenant_id: 'someone-else', scenario_id: `scn_${randomBytes(6).toString('hex')}` })
        .execute(),
    ),
  );
});
