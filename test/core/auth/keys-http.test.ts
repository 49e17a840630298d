import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { loadDefaultRuleset } from '../../../src/core/engine/ruleset.js';
import { PUBLIC_ROUTES, TOKEN_ROUTES, CONSOLE_PAGE_ROUTES, SIGN_IN_ROUTES } from '../../../src/core/auth/gate.js';
import { SessionStore } from '../../../src/core/console/session-store.js';
import { ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { registeredRoutes } from '../../../src/platform/http/server.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

const KEY_SHAPE = /^fg_[a-z2-9]{12}_[A-Za-z0-9_-]{43}$/;

describe('keys and tenants over HTTP', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t?.close());

  const req = (method: 'GET' | 'POST' | 'DELETE', url: string, key: string, payload?: object, headers: Record<string, string> = {}) =>
    t.app.inject({ method, url, headers: { 'x-api-key': key, ...headers }, ...(payload ? { payload } : {}) });

  it('creates a tenant with its first key, creates, lists, reads and revokes keys; secrets are shown once and never listed', async () => {
    const tenant = `keys-${randomBytes(4).toString('hex')}`;
    const made = await req('POST', '/tenants', t.adminKey, {
      id: tenant,
      name: 'Keys Inc',
      first_key: { scopes: ['keys:admin', 'decisions:read'], name: 'first' },
    });
    assert.equal(made.statusCode, 201, made.body);
    assert.equal(made.json().id, tenant);
    assert.equal(made.json().first_key.tenant_id, tenant);
    const first = made.json().first_key.key as string;
    assert.match(first, KEY_SHAPE);
    assert.ok((await req('GET', '/tenants', t.adminKey)).json().tenants.some((x: { id: string }) => x.id === tenant));
    assert.equal((await req('POST', '/tenants', t.adminKey, { id: tenant })).statusCode, 409);

    const created = await req('POST', '/keys', first, { scopes: ['decisions:read'], name: 'sensor', expires_in: '90d' });
    assert.equal(created.statusCode, 201, created.body);
    const k = created.json();
    assert.match(k.key, KEY_SHAPE);
    assert.equal(k.tenant_id, tenant);
    assert.deepEqual(k.scopes, ['decisions:read']);
    assert.ok(Math.abs(Date.parse(k.expires_at) - (Date.now() + 90 * 86_400_000)) < 60_000);
    assert.equal(k.revoked_at, null);

    const list = await req('GET', '/keys', first);
    assert.equal(list.statusCode, 200);
    const ids = list.json().keys.map((x: { id: string }) => x.id);
    assert.deepEqual(ids.sort(), [made.json().first_key.id, k.id].sort());
    for (const x of list.json().keys) {
      assert.equal('key' in x, false, 'no key field in listings');
      assert.equal('digest' in x, false, 'no digest in listings');
    }
    for (const secret of [first, k.key, first.slice(16), k.key.slice(16)]) assert.ok(!list.body.includes(secret), 'no secret in the listing');
    const one = await req('GET', `/keys/${k.id}`, first);
    assert.equal(one.statusCode, 200);
    assert.equal(one.json().id, k.id);
    assert.ok(!one.body.includes(k.key.slice(16)));

    assert.equal((await req('GET', '/decisions', k.key)).statusCode, 200);
    const revoked = await req('DELETE', `/keys/${k.id}`, first);
    assert.equal(revoked.statusCode, 200);
    assert.ok(revoked.json().revoked_at);
    // Same node: the revocation holds for the very next request.
    assert.equal((await req('GET', '/decisions', k.key)).statusCode, 401);
    assert.equal((await req('DELETE', `/keys/key_${'a'.repeat(12)}`, first)).statusCode, 404);
  });

  it('a key cannot grant scopes it does not hold, and only platform admins manage tenants', async () => {
    const tenant = `esc-${randomBytes(4).toString('hex')}`;
    const keysAdmin = (await req('POST', '/tenants', t.adminKey, { id: tenant, first_key: { scopes: ['keys:admin'] } })).json().first_key.key as string;
    for (const scopes of [['decisions:read'], ['admin'], ['keys:admin', 'governance:approve']]) {
      const res = await req('POST', '/keys', keysAdmin, { scopes });
      assert.equal(res.statusCode, 403, `${scopes.join(',')}: ${res.body}`);
      assert.equal(res.json().code, 'missing_scope');
    }
    assert.equal((await req('POST', '/keys', keysAdmin, { scopes: ['keys:admin'] })).statusCode, 201);
    assert.equal((await req('POST', '/keys', keysAdmin, { scopes: ['nonsense'] })).statusCode, 400);
    assert.equal((await t.auth.store.listKeys(tenant)).length, 2, 'no refused key was stored');

    // The tenant's own admin is no platform admin: it cannot list or create tenants.
    const tenantAdmin = (await t.auth.store.createKey({ tenantId: tenant, scopes: ['admin'] })).key;
    for (const res of [await req('GET', '/tenants', tenantAdmin), await req('POST', '/tenants', tenantAdmin, { id: `x${tenant}` })]) {
      assert.equal(res.statusCode, 403, res.body);
      assert.ok(!res.body.includes(t.tenantId), 'no other tenant named');
    }
    assert.equal((await req('GET', '/tenants', keysAdmin)).statusCode, 403);
  });
});

describe("cross-tenant: another tenant's key never reaches this tenant's data", () => {
  let t: TestApp;
  const a = {
    tenant: `xa-${randomBytes(5).toString('hex')}`,
    admin: '',
    keysAdmin: '',
    sensor: '',
    sensorId: '',
    decision: '',
    change: '',
    batch: '',
    scenario: `scn_${randomBytes(12).toString('hex')}`,
    consoleSession: '',
  };
  const b = { tenant: `xb-${randomBytes(5).toString('hex')}`, admin: '', keysAdmin: '' };
  before(async () => {
    t = await startTestApp();
    const post = (url: string, key: string, payload: object) => t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, payload });
    for (const side of [a, b]) {
      const res = await post('/tenants', t.adminKey, { id: side.tenant, first_key: { scopes: ['admin'] } });
      assert.equal(res.statusCode, 201, res.body);
      side.admin = res.json().first_key.key;
      side.keysAdmin = (await post('/keys', side.admin, { scopes: ['keys:admin'] })).json().key;
    }
    // A person of A signed in to the console (the session is made in the store; sign-in is test/core/console).
    const signedIn = await new SessionStore(t.platform.db, undefined, 30 * 60_000).create(
      { tenantId: a.tenant, subject: 'oidc:xa-person', name: 'xa-person', email: '', scopes: ['admin'] },
      { userAgent: 'test', ip: '127.0.0.1' },
    );
    a.consoleSession = signedIn.session.id;
    const sensor = (await post('/keys', a.admin, { scopes: ['defend:write', 'decisions:read'], name: 'a-sensor' })).json();
    a.sensor = sensor.key;
    a.sensorId = sensor.id;
    const decided = await post('/defend', a.sensor, {
      source: 'sshd',
      event_type: 'auth.failure',
      occurred_at: new Date().toISOString(),
      payload: { service: 'ssh', src_ip: '100.64.9.9', username: 'root' },
    });
    assert.equal(decided.statusCode, 200, decided.body);
    a.decision = decided.json().decision_id;
    const batch = await post('/ingest', a.admin, {
      events: [
        {
          source: 'sshd',
          event_type: 'auth.failure',
          occurred_at: new Date().toISOString(),
          payload: { service: 'ssh', src_ip: '100.64.9.10', username: 'root' },
        },
      ],
    });
    assert.equal(batch.statusCode, 202, batch.body);
    a.batch = batch.json().batch_id;
    const ruleset = { ...structuredClone(loadDefaultRuleset().source), version: 'xa-ruleset-1' };
    const change = await post('/governance/changes', a.admin, { kind: 'ruleset', content: ruleset, justification: 'tenant A change' });
    assert.equal(change.statusCode, 201, change.body);
    a.change = change.json().id;
    // A scenario row of A (no lab is needed: tenancy refuses B before the runtime is reached).
    await new ScenarioStore(t.platform.db).insert(a.tenant, {
      scenario_id: a.scenario,
      template_id: 'xa-template',
      template_version: '1',
      track: 'netplus',
      subject: 'xa-learner',
      expires_at: new Date(Date.now() + 3_600_000),
    });
  });
  after(async () => t?.close());

  /** An id of tenant A for each by-id route family; a new family makes this test fail until added. */
  const aIdFor = (url: string): string => {
    if (url.startsWith('/keys/')) return a.sensorId;
    if (url.startsWith('/decisions/active/')) return '100.64.9.9';
    if (url.startsWith('/decisions/')) return a.decision;
    if (url.startsWith('/ingest/batches/')) return a.batch;
    if (url.startsWith('/governance/changes/')) return a.change;
    if (url.startsWith('/console/sessions/')) return a.consoleSession;
    if (url.startsWith('/v1/scenarios/') || url.startsWith('/internal/scenario/') || url.startsWith('/v1/scores/')) return a.scenario;
    throw new Error(`no tenant-A resource known for ${url}: add one to the cross-tenant test`);
  };
  /** Query strings that make list/proof routes return data rather than a validation error. */
  const QUERY: Record<string, string[]> = {
    '/ledger/entries': ['?start=0&end=100', '?log=audit&start=0&end=100'],
    '/ledger/checkpoint': ['?fresh=true', '?log=audit&fresh=true'],
    '/ledger/proof/inclusion': ['?index=0&tree_size=1', '?log=audit&index=0&tree_size=1'],
    '/ledger/proof/consistency': ['?from=1&to=1', '?log=audit&from=1&to=1'],
  };
  const BODIES = [{ reason: 'cross-tenant probe' }, {}];
  // Markers that cannot occur inside A's tenant id (`xa-` + hex), which a refusal may name.
  const leaksA = (body: string) =>
    [a.tenant, a.sensorId, a.decision, a.change, a.scenario, a.consoleSession, 'a-sensor', 'xa-ruleset-1', 'tenant A change', 'xa-learner', 'xa-person'].filter(
      (s) => body.includes(s),
    );

  // Token routes take no key at all (their token binds the one scenario; test/forge/access covers it);
  // the console's sign-in steps and its static page hold no tenant data (test/core/console covers them).
  const keyless = (id: string) => PUBLIC_ROUTES.has(id) || TOKEN_ROUTES.has(id) || SIGN_IN_ROUTES.has(id) || CONSOLE_PAGE_ROUTES.has(id);
  const protectedRoutes = () => registeredRoutes(t.app).filter((r) => r.method !== 'HEAD' && !keyless(`${r.method} ${r.url}`));

  it("every protected route answers 403 tenant_mismatch when B's key names tenant A", async () => {
    for (const key of [b.admin, b.keysAdmin]) {
      for (const r of protectedRoutes()) {
        const url = r.url.includes(':') ? r.url.replace(/:(id|scenario_id|ip)\b/, aIdFor(r.url)) : r.url;
        const res = await t.app.inject({
          method: r.method as 'GET',
          url,
          headers: { 'x-api-key': key, 'x-tenant-id': a.tenant },
          ...(r.method === 'POST' ? { payload: {} } : {}),
        });
        // A keys:admin-only key may be stopped by the scope check first; both are refusals.
        assert.ok(res.statusCode === 403, `${r.method} ${r.url}: ${res.statusCode} ${res.body}`);
        if (key === b.admin) assert.equal(res.json().code, 'tenant_mismatch', `${r.method} ${r.url}`);
        assert.deepEqual(
          leaksA(res.body).filter((s) => s !== a.tenant && !url.includes(s)),
          [],
          `${r.method} ${r.url}`,
        );
      }
    }
  });

  it("by id, B gets 404 for every resource of A (read, write, revoke), and A's resources are unchanged", async () => {
    const byId = protectedRoutes().filter((r) => r.url.includes(':'));
    assert.ok(byId.length >= 10, `by-id routes: ${byId.map((r) => r.url).join(', ')}`);
    for (const key of [b.admin, b.keysAdmin]) {
      for (const r of byId) {
        const id = aIdFor(r.url);
        const url = r.url.replace(/:(id|scenario_id|ip)\b/, id);
        assert.ok(!url.includes(':'), `${r.url} has a parameter this test does not fill`);
        let res = await t.app.inject({
          method: r.method as 'GET',
          url,
          headers: { 'x-api-key': key },
          // Writes carry a body (a reason); DELETE /decisions/active/:ip needs one too.
          ...(r.method === 'POST' || r.method === 'DELETE' ? { payload: BODIES[0]! } : {}),
        });
        if (res.statusCode === 400 && (r.method === 'POST' || r.method === 'DELETE'))
          res = await t.app.inject({ method: r.method, url, headers: { 'x-api-key': key }, payload: BODIES[1]! });
        assert.ok(res.statusCode === 404 || res.statusCode === 403, `${r.method} ${url} by B: ${res.statusCode} ${res.body}`);
        if (key === b.admin) assert.equal(res.statusCode, 404, `${r.method} ${url}: B's admin holds every scope, so only tenancy stops it`);
        assert.deepEqual(
          leaksA(res.body).filter((s) => s !== id),
          [],
          `${r.method} ${url} leaked A's data`,
        );
      }
    }
    // Nothing B did touched A.
    assert.equal((await t.app.inject({ url: '/decisions', headers: { 'x-api-key': a.sensor } })).statusCode, 200, "A's sensor key still works");
    const change = await t.app.inject({ url: `/governance/changes/${a.change}`, headers: { 'x-api-key': a.admin } });
    assert.equal(change.json().status, 'proposed');
    assert.deepEqual(change.json().approvals, []);
    const keyA = await t.app.inject({ url: `/keys/${a.sensorId}`, headers: { 'x-api-key': a.admin } });
    assert.equal(keyA.json().revoked_at, null);
  });

  it('lists, ledgers and body-named tenants: B sees only its own data', async () => {
    const lists = protectedRoutes().filter((r) => r.method === 'GET' && !r.url.includes(':'));
    for (const r of lists) {
      for (const q of QUERY[r.url] ?? ['']) {
        const res = await t.app.inject({ url: `${r.url}${q}`, headers: { 'x-api-key': b.admin } });
        assert.ok(res.statusCode < 500, `${r.url}${q}: ${res.statusCode}`);
        assert.deepEqual(leaksA(res.body), [], `${r.url}${q} (${res.statusCode}) leaked A's data`);
      }
    }
    // The same lists as A do show A's data, so the check above can fail.
    const own = await t.app.inject({ url: '/decisions', headers: { 'x-api-key': a.admin } });
    assert.ok(own.body.includes(a.decision));
    const ownLedger = await t.app.inject({ url: '/ledger/entries?log=audit&start=0&end=100', headers: { 'x-api-key': a.admin } });
    assert.ok(ownLedger.body.includes(a.sensorId));

    // Writes naming A in the body are refused; nothing lands in A.
    const before = (await t.auth.store.listKeys(a.tenant)).length;
    const writes = [
      await t.app.inject({ method: 'POST', url: '/keys', headers: { 'x-api-key': b.keysAdmin }, payload: { scopes: ['keys:admin'], tenant_id: a.tenant } }),
      await t.app.inject({
        method: 'POST',
        url: '/defend',
        headers: { 'x-api-key': b.admin },
        payload: { tenant_id: a.tenant, source: 'sshd', event_type: 'auth.failure', occurred_at: new Date().toISOString(), payload: { src_ip: '100.64.1.1' } },
      }),
      await t.app.inject({
        method: 'POST',
        url: '/governance/changes',
        headers: { 'x-api-key': b.admin },
        payload: { tenant_id: a.tenant, kind: 'ruleset', content: {}, justification: 'cross-tenant probe' },
      }),
      await t.app.inject({ url: `/decisions?tenant_id=${a.tenant}`, headers: { 'x-api-key': b.admin } }),
    ];
    for (const res of writes) {
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().code, 'tenant_mismatch');
    }
    assert.equal((await t.auth.store.listKeys(a.tenant)).length, before);
  });
});
