import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyStore } from '../../../src/core/auth/store.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { createThrowawayDatabase } from '../../helpers/postgres.js';
import { freePort } from '../../helpers/servers.js';
import { forgeTestEnv, namespacesOf } from './helpers.js';

test('a spawn-only process hands the scenario to an orchestrator process over HTTP with the SAT', async (t) => {
  const pg = await createThrowawayDatabase();
  const fx = forgeTestEnv();
  const apps: TestApp[] = [];
  t.after(async () => {
    for (const a of apps.reverse()) await a.close();
    await fx.cleanup();
    await pg.drop();
  });
  const orch = await startTestApp({ role: 'orchestrator', env: { ...fx.env, FG_DB_URL: pg.url } });
  apps.push(orch);
  const port = await freePort();
  await orch.app.listen({ host: '127.0.0.1', port });
  const keys = new KeyStore(orch.platform.db);
  const operateKey = (await keys.createKey({ tenantId: orch.tenantId, scopes: ['forge:operate'], name: 'spawn role' })).key;
  const spawnKey = (await keys.createKey({ tenantId: orch.tenantId, scopes: ['forge:spawn'], name: 'learning portal' })).key;

  const spawnRole = await startTestApp({
    role: 'spawn',
    env: {
      ...fx.env,
      FG_DB_URL: pg.url,
      FG_ORCHESTRATOR_URL: `http://127.0.0.1:${port}`,
      FG_ORCHESTRATOR_API_KEY: operateKey,
      FG_QUOTA_MAX_CONCURRENT_PER_SUBJECT: '1',
    },
  });
  apps.push(spawnRole);
  const asSpawner = { 'x-api-key': spawnKey };

  // Each role serves only its own routes.
  assert.equal((await spawnRole.app.inject({ method: 'POST', url: '/v1/scenarios', headers: asSpawner, payload: {} })).statusCode, 404);
  assert.equal(
    (
      await orch.app.inject({
        method: 'POST',
        url: '/v1/spawn',
        headers: { 'x-api-key': operateKey, 'x-client-id': 'c' },
        payload: { track: 'netplus', subject: 'x', request_id: 'r' },
      })
    ).statusCode,
    404,
  );

  const ex = await spawnRole.app.inject({
    method: 'POST',
    url: '/v1/entitlements/exchange',
    headers: asSpawner,
    payload: { receipt: fx.receipt({ tenant: orch.tenantId, subject: 'bob', track: 'netplus' }) },
  });
  assert.equal(ex.statusCode, 201, ex.body);
  // A forge:spawn key cannot operate scenarios.
  assert.equal((await orch.app.inject({ url: '/v1/scenarios/scn_000000000000000000000000', headers: asSpawner })).statusCode, 403);

  // Two spawns for bob at once on Postgres, bob allowed one lab: the per-tenant lock and the
  // pending row make exactly one of them build a lab while the other is refused.
  const both = await Promise.all(
    ['split-1', 'split-2'].map((id) =>
      spawnRole.app.inject({
        method: 'POST',
        url: '/v1/spawn',
        headers: { ...asSpawner, 'x-client-id': 'portal' },
        payload: { track: 'netplus', subject: 'bob', request_id: id },
      }),
    ),
  );
  assert.deepEqual(both.map((r) => r.statusCode).sort(), [201, 429], both.map((r) => r.body).join('\n'));
  const res = both.find((r) => r.statusCode === 201)!;
  const { scenario_id: scenarioId, sat } = res.json<{ scenario_id: string; sat: string }>();
  assert.equal(res.json().state, 'running');
  assert.equal(namespacesOf(fx.runtime, scenarioId).length, 3, 'the orchestrator process built the lab');

  const seen = await orch.app.inject({ url: `/v1/scenarios/${scenarioId}`, headers: { 'x-api-key': operateKey } });
  assert.equal(seen.statusCode, 200, seen.body);
  assert.deepEqual([seen.json().state, seen.json().subject], ['running', 'bob']);
  const reuse = await orch.app.inject({ method: 'POST', url: '/v1/scenarios', headers: { 'x-api-key': operateKey, 'x-sat': sat }, payload: {} });
  assert.equal(reuse.statusCode, 403, 'the SAT handed over HTTP was spent by the orchestrator');
  assert.equal(reuse.json().reason, 'sat_replayed');

  const del = await orch.app.inject({ method: 'DELETE', url: `/v1/scenarios/${scenarioId}`, headers: { 'x-api-key': operateKey } });
  assert.equal(del.statusCode, 200, del.body);
  assert.deepEqual(namespacesOf(fx.runtime, scenarioId), []);
});

test('a spawn-only process without an orchestrator answers 503 and charges nothing', async (t) => {
  const fx = forgeTestEnv();
  const app = await startTestApp({ role: 'spawn', env: fx.env });
  t.after(async () => {
    await app.close();
    await fx.cleanup();
  });
  const ex = await app.app.inject({
    method: 'POST',
    url: '/v1/entitlements/exchange',
    headers: { 'x-api-key': app.adminKey },
    payload: { receipt: fx.receipt({ tenant: app.tenantId, subject: 'cy', track: 'netplus', credits: 1 }) },
  });
  assert.equal(ex.statusCode, 201, ex.body);
  const spawn = () =>
    app.app.inject({
      method: 'POST',
      url: '/v1/spawn',
      headers: { 'x-api-key': app.adminKey, 'x-client-id': 'c' },
      payload: { track: 'netplus', subject: 'cy', request_id: 'no-orch' },
    });
  const res = await spawn();
  assert.equal(res.statusCode, 503, res.body);
  assert.equal(res.json().reason, 'no_orchestrator');
  // The one credit was given back and the request_id freed: the same request is refused the same way, not 403/409.
  const again = await spawn();
  assert.equal(again.statusCode, 503, again.body);
  const charges = await app.platform.db.withTenant(app.tenantId, (tx) =>
    tx
      .selectFrom('billing_events' as never)
      .selectAll()
      .where('kind' as never, '=', 'charge' as never)
      .execute(),
  );
  assert.equal((charges as unknown[]).length, 0);
});
