import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createAuthGate } from '../../../src/core/auth/gate.js';
import type { CreatedKey } from '../../../src/core/auth/store.js';
import { buildServer, type App } from '../../../src/platform/http/server.js';
import { startTestApp, testConfig } from '../../helpers/app.js';
import { TEST_PG_ADMIN_URL } from '../../helpers/postgres.js';
import { authEvents, metricValue, probePath, probeRoutes, startAuthNode, type AuthNode } from './helpers.js';

const PROBE = probePath('decisions:read');

/**
 * One node whose key store fails after `seen` was looked up once, and a server per fail-open
 * configuration in front of it (the gate takes its config; the platform is shared). The cache TTL
 * is 0 so every request asks the store: what the gate does then is the fail-open/closed decision.
 */
describe('fail closed when the key store cannot be read', () => {
  let node: AuthNode;
  let seen: CreatedKey;
  let seenRevoked: CreatedKey;
  let unseen: CreatedKey;
  const servers: App[] = [];
  before(async () => {
    node = await startAuthNode({ keyCacheTtlMs: 0 });
    const mk = () => node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] });
    [seen, seenRevoked, unseen] = [await mk(), await mk(), await mk()];
    assert.equal((await node.app.inject({ url: PROBE, headers: { 'x-api-key': seen.key } })).statusCode, 200);
    assert.equal((await node.app.inject({ url: PROBE, headers: { 'x-api-key': seenRevoked.key } })).statusCode, 200);
    await node.auth.store.revokeKey(node.tenantId, seenRevoked.id);
    assert.equal((await node.app.inject({ url: PROBE, headers: { 'x-api-key': seenRevoked.key } })).statusCode, 401);
    await node.platform.db.close(); // the key store can no longer be read
    await assert.rejects(node.auth.store.lookup(seen.id));
  });
  after(async () => {
    for (const app of servers) await app.close();
    await node?.close();
  });

  /** A server on the broken node whose gate runs with these FG_AUTH_* settings. */
  async function serverWith(env: Record<string, string>) {
    const calls = new Map<string, number>();
    const failOpens: string[] = [];
    const gate = createAuthGate({
      config: testConfig(env),
      security: node.platform.security,
      metrics: node.platform.metrics,
      resolver: node.auth.resolver,
      bindTenant: node.auth.bindTenant,
      onFailOpen: (tenant) => void failOpens.push(tenant),
    });
    const app = await buildServer(node.platform, {
      role: 'fail-test',
      version: '0.0.0-test',
      gate,
      plugins: [{ name: 'probes', plugin: probeRoutes(calls, node.auth.bindTenant) }],
    });
    servers.push(app);
    return { app, calls, failOpens };
  }

  for (const [label, env] of [
    ['by default', {}],
    ['with FG_AUTH_DB_FAIL_OPEN=true alone', { FG_AUTH_DB_FAIL_OPEN: 'true' }],
    ['with only the acknowledgement', { FG_AUTH_DB_FAIL_OPEN_ACKNOWLEDGED: 'true' }],
  ] as const) {
    it(`${label}: protected requests get 503, never through`, async () => {
      const { app, calls, failOpens } = await serverWith(env);
      const unavailable0 = await metricValue(app, 'auth_failure_total', { reason: 'store_unavailable' });
      const ids: string[] = [];
      for (const key of [seen.key, unseen.key]) {
        const res = await app.inject({ url: PROBE, headers: { 'x-api-key': key } });
        assert.equal(res.statusCode, 503, res.body);
        assert.equal(res.json().code, 'unavailable');
        assert.ok(res.headers['retry-after']);
        ids.push(res.json().request_id);
      }
      assert.equal(calls.get(PROBE) ?? 0, 0, 'no handler ran');
      assert.equal(await metricValue(app, 'fail_open_triggered_total', { component: 'auth' }), 0);
      assert.equal(await metricValue(app, 'auth_failure_total', { reason: 'store_unavailable' }), unavailable0 + 2);
      const lines = authEvents(node.logs).filter((l) => ids.includes(l.request_id as string));
      assert.deepEqual(
        lines.map((l) => [l.reason, l.level]),
        [
          ['store_unavailable', 'error'],
          ['store_unavailable', 'error'],
        ],
      );
      assert.equal(node.logs.lines.filter((l) => l.level === 'fatal').length, 0);
      assert.deepEqual(failOpens, []);
    });
  }

  it('with FG_AUTH_DB_FAIL_OPEN and its acknowledgement: a previously seen key passes, logged CRITICAL and counted; nothing else does', async () => {
    const { app, calls, failOpens } = await serverWith({ FG_AUTH_DB_FAIL_OPEN: 'true', FG_AUTH_DB_FAIL_OPEN_ACKNOWLEDGED: 'true' });
    const res = await app.inject({ url: PROBE, headers: { 'x-api-key': seen.key } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(calls.get(PROBE), 1);
    assert.equal(await metricValue(app, 'fail_open_triggered_total', { component: 'auth' }), 1);
    assert.deepEqual(failOpens, [node.tenantId], 'the fail-open pass is handed to the audit ledger');
    const critical = authEvents(node.logs).filter((l) => l.reason === 'fail_open');
    assert.equal(critical.length, 1);
    assert.equal(critical[0]!.level, 'fatal');
    assert.match(String(critical[0]!.msg), /CRITICAL/);
    assert.equal(critical[0]!.key_id, seen.id);
    assert.equal(critical[0]!.request_id, res.headers['x-request-id']);
    assert.ok(!JSON.stringify(node.logs.lines).includes(seen.key.slice(16)), 'no secret logged');

    // Never seen, revoked when last seen, or a wrong secret for a seen id: still refused.
    assert.equal((await app.inject({ url: PROBE, headers: { 'x-api-key': unseen.key } })).statusCode, 503);
    assert.equal((await app.inject({ url: PROBE, headers: { 'x-api-key': seenRevoked.key } })).statusCode, 401);
    const forged = `${seen.key.slice(0, 16)}${'A'.repeat(43)}`;
    assert.equal((await app.inject({ url: PROBE, headers: { 'x-api-key': forged } })).statusCode, 503, 'a wrong secret is not let through');
    assert.equal((await app.inject({ url: probePath('admin'), headers: { 'x-api-key': seen.key } })).statusCode, 403, 'scopes still apply');
    assert.equal(calls.get(PROBE), 1);
    assert.equal(
      await metricValue(app, 'fail_open_triggered_total', { component: 'auth' }),
      2,
      'each accepted stale key counts (the 403 one too), refusals do not',
    );
  });
});

describe('fail closed on a whole platform', () => {
  it('a Postgres-backed platform whose database disappears answers 503 to keys it must look up, and never 2xx', async () => {
    const t = await startTestApp({ db: 'postgres' });
    try {
      const key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['admin'] })).key;
      const name = new URL(t.platform.config.db.url!).pathname.slice(1);
      const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
      for (const url of ['/keys', '/decisions', '/governance/changes', '/ledger/checkpoint', '/health/detailed']) {
        const res = await t.app.inject({ url, headers: { 'x-api-key': key } });
        assert.equal(res.statusCode, 503, `${url}: ${res.body}`);
      }
      for (const k of [key, t.adminKey]) {
        const res = await t.app.inject({ method: 'POST', url: '/keys', headers: { 'x-api-key': k }, payload: { scopes: ['decisions:read'] } });
        assert.ok(res.statusCode >= 500, `POST /keys: ${res.statusCode}`);
      }
    } finally {
      await t.close();
    }
  });
});
