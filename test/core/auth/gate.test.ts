import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseConfig, startupProblems, loadConfig, ConfigError } from '../../../src/config/config.js';
import { createAuthGate } from '../../../src/core/auth/gate.js';
import { generateKey } from '../../../src/core/auth/key-format.js';
import { buildServer } from '../../../src/platform/http/server.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { authEvents, metricValue, probePath, probeRoutes, startAuthNode } from './helpers.js';

/** A fresh, unique address per request, so the invalid-key guard never slows these tests down. */
let addr = 0;
const nextAddress = () => `127.1.${Math.floor(++addr / 250)}.${(addr % 250) + 1}`;

/** The 43-character secret part of `fg_<12-char id>_<secret>` (the secret itself may contain '_'). */
const secretOf = (key: string) => key.slice(16);

const withoutRequestId = (body: Record<string, unknown>) => {
  const { request_id: _ignored, ...rest } = body;
  return rest;
};

describe('auth gate on the whole platform', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ captureLogs: true });
  });
  after(async () => t?.close());

  const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers, remoteAddress: nextAddress() });
  const logText = () => JSON.stringify(t.logs!.lines);

  it('refuses a key in the query string with 400 api_key_in_query, and never logs it', async () => {
    const reader = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'] })).key;
    const urls = [
      `/decisions?api_key=${reader}`,
      `/decisions?x-api-key=${encodeURIComponent(reader)}`,
      `/keys?apikey=${t.adminKey}`,
      `/keys?limit=1&key=${t.adminKey}`,
      `/decisions?entity=${reader}`, // named innocently, still a key
      `/decisions?entity=${encodeURIComponent(reader).replaceAll('_', '%5F')}`,
      `/health/live?api_key=${reader}`, // even on a public route
    ];
    for (const url of urls) {
      const res = await t.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.json().code, 'api_key_in_query');
      assert.match(res.json().detail, /X-API-Key header/);
      assert.ok(!res.body.includes(reader) && !res.body.includes(t.adminKey), 'the answer does not echo the key');
    }
    // Also when the header carries a valid key as well: the URL is the problem.
    assert.equal((await t.app.inject({ url: `/keys?api_key=${t.adminKey}`, headers: { 'x-api-key': t.adminKey } })).statusCode, 400);
    const refusals = authEvents(t.logs!).filter((l) => l.reason === 'key_in_query');
    assert.ok(refusals.length >= urls.length);
    for (const secret of [reader, t.adminKey, secretOf(reader), secretOf(t.adminKey)])
      assert.ok(!logText().includes(secret), 'no key or secret in any log line');
  });

  it(
    'answers 401 with one body for missing, malformed, unknown, wrong-secret, ' + 'expired and revoked keys; the security log and metrics tell them apart',
    async () => {
      const expired = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['admin'], expiresAt: new Date(Date.now() - 1000) });
      const revoked = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['admin'] });
      await t.auth.store.revokeKey(t.tenantId, revoked.id);
      const unknown = generateKey();
      const wrongSecret = `${t.adminKey.slice(0, 16)}${randomBytes(32).toString('base64url')}`; // fg_ + 12-char id + _
      const adminId = `key_${t.adminKey.split('_')[1]}`;
      const cases = [
        { reason: 'missing', headers: {} as Record<string, string>, keyId: undefined },
        { reason: 'malformed', headers: { 'x-api-key': `fg_${randomBytes(5).toString('hex')}` }, keyId: undefined },
        { reason: 'unknown', headers: { 'x-api-key': unknown.key }, keyId: unknown.id },
        { reason: 'unknown', headers: { 'x-api-key': wrongSecret }, keyId: adminId },
        { reason: 'expired', headers: { 'x-api-key': expired.key }, keyId: expired.id, tenant: t.tenantId },
        { reason: 'revoked', headers: { 'x-api-key': revoked.key }, keyId: revoked.id, tenant: t.tenantId },
      ];
      const before = new Map<string, number>();
      for (const c of cases) before.set(c.reason, await metricValue(t.app, 'auth_failure_total', { reason: c.reason }));
      const bodies: Array<Record<string, unknown>> = [];
      for (const c of cases) {
        const res = await get('/keys', c.headers);
        assert.equal(res.statusCode, 401, `${c.reason}: ${res.body}`);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
        const body = res.json<Record<string, unknown>>();
        assert.equal(body.request_id, res.headers['x-request-id']);
        bodies.push(withoutRequestId(body));
        const events = authEvents(t.logs!).filter((l) => l.request_id === body.request_id);
        assert.equal(events.length, 1, `one security line for ${c.reason}: ${JSON.stringify(events)}`);
        const ev = events[0]!;
        assert.equal(ev.success, false);
        assert.equal(ev.reason, c.reason);
        assert.equal(ev.key_id, c.keyId);
        if (c.tenant) assert.equal(ev.tenant_id, c.tenant);
        assert.equal(ev.route, 'GET /keys');
      }
      for (const b of bodies) assert.deepEqual(b, bodies[0], 'the body never says which check failed');
      for (const reason of new Set(cases.map((c) => c.reason))) {
        const n = cases.filter((c) => c.reason === reason).length;
        assert.equal(await metricValue(t.app, 'auth_failure_total', { reason }), before.get(reason)! + n, `auth_failure_total{reason=${reason}}`);
      }
      for (const secret of [expired.key, revoked.key, unknown.key, wrongSecret]) assert.ok(!logText().includes(secretOf(secret)), 'no secret in the logs');

      const ok0 = await metricValue(t.app, 'auth_success_total');
      assert.equal((await get('/keys', { 'x-api-key': t.adminKey })).statusCode, 200);
      assert.equal(await metricValue(t.app, 'auth_success_total'), ok0 + 1);
    },
  );

  it('answers 403 naming the missing scope, and logs it', async () => {
    const reader = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'] });
    const res = await get('/keys', { 'x-api-key': reader.key });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().code, 'missing_scope');
    assert.match(res.json().detail, /keys:admin/);
    assert.deepEqual(res.json().missing_scopes, ['keys:admin']);
    const ev = authEvents(t.logs!).find((l) => l.request_id === res.json().request_id);
    assert.equal(ev?.reason, 'missing_scope');
    assert.equal(ev?.key_id, reader.id);
    assert.equal(ev?.tenant_id, t.tenantId);
    assert.equal((await get('/decisions', { 'x-api-key': reader.key })).statusCode, 200, 'the scope it holds works');
  });

  it('answers 403 tenant_mismatch when the header, the body or the query names another tenant, counting and logging each', async () => {
    await t.auth.store.createTenant('mismatch-other');
    const mismatches0 = await metricValue(t.app, 'tenant_mismatch_total');
    const admin = { 'x-api-key': t.adminKey };
    const answers = [
      await get('/keys', { ...admin, 'x-tenant-id': 'mismatch-other' }),
      await t.app.inject({ method: 'POST', url: '/keys', headers: admin, payload: { scopes: ['decisions:read'], tenant_id: 'mismatch-other' } }),
      await get('/decisions?tenant_id=mismatch-other', admin),
      await t.app.inject({
        method: 'POST',
        url: '/defend',
        headers: admin,
        payload: {
          tenant_id: 'mismatch-other',
          source: 'sshd',
          event_type: 'auth.failure',
          occurred_at: new Date().toISOString(),
          payload: { src_ip: '100.64.0.1' },
        },
      }),
    ];
    for (const res of answers) {
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().code, 'tenant_mismatch');
      const ev = authEvents(t.logs!).find((l) => l.request_id === res.json().request_id);
      assert.equal(ev?.reason, 'tenant_mismatch', res.body);
      assert.equal(ev?.claimed_tenant, 'mismatch-other');
      assert.equal(ev?.tenant_id, t.tenantId);
      assert.equal(ev?.key_id, `key_${t.adminKey.split('_')[1]}`);
    }
    assert.equal(await metricValue(t.app, 'tenant_mismatch_total'), mismatches0 + answers.length);
    assert.deepEqual(await t.auth.store.listKeys('mismatch-other'), [], 'nothing was written in the other tenant');
    // Naming one's own tenant is fine.
    assert.equal((await get('/keys', { ...admin, 'x-tenant-id': t.tenantId })).statusCode, 200);
  });

  it("answers 400 for 'unknown' or empty tenants everywhere, and the database refuses them too", async () => {
    const admin = { 'x-api-key': t.adminKey };
    for (const bad of ['unknown', '', 'UPPER', '-x', 'a']) {
      const h = await get('/keys', { ...admin, 'x-tenant-id': bad });
      assert.equal(h.statusCode, 400, `header ${JSON.stringify(bad)}: ${h.body}`);
      assert.equal(h.json().code, 'invalid_tenant');
      const b = await t.app.inject({ method: 'POST', url: '/keys', headers: admin, payload: { scopes: ['decisions:read'], tenant_id: bad } });
      assert.equal(b.statusCode, 400, `body ${JSON.stringify(bad)}: ${b.body}`);
      const created = await t.app.inject({ method: 'POST', url: '/tenants', headers: admin, payload: { id: bad } });
      assert.equal(created.statusCode, 400, `POST /tenants ${JSON.stringify(bad)}`);
    }
    await assert.rejects(t.platform.db.db.insertInto('tenants').values({ id: 'unknown', name: '', disabled_at: null }).execute(), /check|violat/i);
    await assert.rejects(t.platform.db.db.insertInto('tenants').values({ id: '', name: '', disabled_at: null }).execute(), /check|violat/i);
    assert.ok(!(await t.auth.store.tenantExists('unknown')));
  });
});

describe('development switches: FG_AUTH_ENABLED=0 and FG_API_KEY', () => {
  it('with auth disabled in test, requests pass without a key but must name their tenant (400 otherwise)', async () => {
    const t = await startTestApp({ env: { FG_AUTH_ENABLED: '0' } });
    try {
      const none = await t.app.inject({ url: '/keys' });
      assert.equal(none.statusCode, 400, none.body);
      assert.equal(none.json().code, 'invalid_tenant');
      assert.match(none.json().detail, /no tenant/);
      const named = await t.app.inject({ url: '/keys', headers: { 'x-tenant-id': t.tenantId } });
      assert.equal(named.statusCode, 200, named.body);
      assert.ok(named.json().keys.length >= 1);
      const write = await t.app.inject({ method: 'POST', url: '/keys', payload: { scopes: ['decisions:read'] } });
      assert.equal(write.statusCode, 400, 'a write that would land in no tenant');
    } finally {
      await t.close();
    }
  });

  it('the global key works in test for every scope, lands in the tenant it names, and 400 when it names none', async () => {
    const globalKey = `dev-global-${randomBytes(16).toString('hex')}`;
    const t = await startTestApp({ env: { FG_API_KEY: globalKey }, captureLogs: true });
    try {
      const none = await t.app.inject({ url: '/keys', headers: { 'x-api-key': globalKey } });
      assert.equal(none.statusCode, 400, none.body);
      assert.equal(none.json().code, 'invalid_tenant');
      const write = await t.app.inject({ method: 'POST', url: '/keys', headers: { 'x-api-key': globalKey }, payload: { scopes: ['decisions:read'] } });
      assert.equal(write.statusCode, 400, write.body);
      const named = await t.app.inject({
        method: 'POST',
        url: '/keys',
        headers: { 'x-api-key': globalKey, 'x-tenant-id': t.tenantId },
        payload: { scopes: ['decisions:read'] },
      });
      assert.equal(named.statusCode, 201, named.body);
      assert.equal(named.json().tenant_id, t.tenantId);
      assert.equal((await t.app.inject({ url: '/keys', headers: { 'x-api-key': `${globalKey}x` } })).statusCode, 401);
      assert.ok(!JSON.stringify(t.logs!.lines).includes(globalKey), 'the global key is never logged');
    } finally {
      await t.close();
    }
  });

  it('staging refuses both at startup, and its gate rejects the global key (401) and ignores FG_AUTH_ENABLED=0', async () => {
    const globalKey = `dev-global-${randomBytes(16).toString('hex')}`;
    const env = { FG_ENV: 'staging', FG_API_KEY: globalKey, FG_AUTH_ENABLED: '0', FG_LOG_LEVEL: 'silent' };
    const report = parseConfig(env);
    const problems = startupProblems(report);
    assert.ok(
      problems.some((p) => p.includes('FG_API_KEY')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.includes('FG_AUTH_ENABLED=0')),
      problems.join('\n'),
    );
    assert.throws(() => loadConfig(env), ConfigError);

    // The gate built with that staging config, in front of a test server (a staging server refuses to start).
    const node = await startAuthNode();
    try {
      const staging = report.config!;
      assert.equal(staging.env, 'staging');
      const calls = new Map<string, number>();
      const gate = createAuthGate({
        config: staging,
        security: node.platform.security,
        metrics: node.platform.metrics,
        resolver: node.auth.resolver,
        bindTenant: node.auth.bindTenant,
      });
      const app = await buildServer(node.platform, {
        role: 'staging-gate',
        version: '0.0.0-test',
        gate,
        plugins: [{ name: 'probes', plugin: probeRoutes(calls, node.auth.bindTenant) }],
      });
      try {
        const path = probePath('decisions:read');
        const withGlobal = await app.inject({ url: path, headers: { 'x-api-key': globalKey, 'x-tenant-id': node.tenantId } });
        assert.equal(withGlobal.statusCode, 401, withGlobal.body);
        assert.equal(withGlobal.json().code, 'unauthorized');
        const ev = authEvents(node.logs).find((l) => l.request_id === withGlobal.json().request_id);
        assert.equal(ev?.reason, 'global_key_refused');
        assert.equal((await app.inject({ url: path })).statusCode, 401, 'FG_AUTH_ENABLED=0 is ignored outside dev and test');
        assert.equal(calls.get(path) ?? 0, 0, 'no handler ran');
        assert.equal((await app.inject({ url: path, headers: { 'x-api-key': node.adminKey! } })).statusCode, 200, 'scoped keys still work');
        assert.equal(calls.get(path), 1);
        assert.ok(!JSON.stringify(node.logs.lines).includes(globalKey));
      } finally {
        await app.close();
      }
    } finally {
      await node.close();
    }
  });
});
