import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { PUBLIC_ROUTES, TOKEN_ROUTES, SIGN_IN_ROUTES } from '../../../src/core/auth/gate.js';
import { registeredRoutes } from '../../../src/platform/http/server.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { authEvents, metricValue } from './helpers.js';
import { firstError } from '../../helpers/problems.js';

const run = randomBytes(3).toString('hex');
const ACME = `acme-${run}`;
const BETA = `beta-${run}`;
const GLOBAL_KEY = `dev-global-${randomBytes(16).toString('hex')}`;
const event = (extra: Record<string, unknown> = {}) => ({
  source: 'sshd',
  event_type: 'auth.failure',
  occurred_at: new Date().toISOString(),
  payload: { src_ip: '100.64.77.1', username: 'root' },
  ...extra,
});

describe('tenants named by events, batches and query strings are held against the key', () => {
  let t: TestApp;
  let sensor: string;
  let admin: string;
  before(async () => {
    t = await startTestApp({ captureLogs: true, env: { FG_API_KEY: GLOBAL_KEY } });
    await t.auth.store.createTenant(ACME);
    await t.auth.store.createTenant(BETA);
    sensor = (await t.auth.store.createKey({ tenantId: ACME, scopes: ['defend:write', 'ingest:write', 'decisions:read'] })).key;
    admin = (await t.auth.store.createKey({ tenantId: ACME, scopes: ['admin'] })).key;
  });
  after(async () => t?.close());

  const batches = async (tenant: string) =>
    (
      await t.platform.db.withTenant(tenant, (tx) =>
        tx
          .selectFrom('ingest_batches')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow(),
      )
    ).n;
  const ingest = (events: unknown[], headers: Record<string, string> = { 'x-api-key': sensor }, query = '') =>
    t.app.inject({ method: 'POST', url: `/ingest${query}`, headers, payload: { events } });
  const mismatches = () => metricValue(t.app, 'tenant_mismatch_total');

  /** 403 tenant_mismatch naming `path`, in the security log with the request id, the key's tenant and the claim. */
  function assertMismatch(res: LightMyRequestResponse, path: string, claimed: string, label: string, boundTenant = ACME): void {
    assert.equal(res.statusCode, 403, `${label}: ${res.body}`);
    const body = res.json();
    assert.equal(body.code, 'tenant_mismatch', label);
    assert.equal(firstError(body)?.path, path, `${label}: ${res.body}`);
    assert.ok(String(body.detail).startsWith(`${path}: `), label);
    const line = authEvents(t.logs!).find((l) => l.request_id === body.request_id && l.reason === 'tenant_mismatch');
    assert.ok(line, `${label}: no security log line for ${body.request_id}`);
    assert.equal(line.tenant_id, boundTenant, label);
    assert.equal(line.claimed_tenant, claimed, label);
    assert.equal(line.field, path, label);
  }

  function assertInvalid(res: LightMyRequestResponse, path: string, label: string): void {
    assert.equal(res.statusCode, 400, `${label}: ${res.body}`);
    assert.equal(res.json().code, 'invalid_tenant', label);
    assert.equal(firstError(res.json())?.path, path, `${label}: ${res.body}`);
  }

  describe("/ingest checks each event's tenant_id as /defend does", () => {
    it('an event naming another tenant refuses the whole batch: 403 naming body/events/<i>/tenant_id, logged and counted, nothing stored', async () => {
      const [acmeBefore, betaBefore, counted] = [await batches(ACME), await batches(BETA), await mismatches()];
      const res = await ingest([event(), event({ tenant_id: ACME }), event({ tenant_id: BETA }), event()]);
      assertMismatch(res, 'body/events/2/tenant_id', BETA, 'ingest');
      assert.equal(await mismatches(), counted + 1, 'counted once');
      assert.deepEqual([await batches(ACME), await batches(BETA)], [acmeBefore, betaBefore], 'nothing stored in either tenant');
      // /defend refuses the same event the same way.
      assertMismatch(
        await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': sensor }, payload: event({ tenant_id: BETA }) }),
        'body/tenant_id',
        BETA,
        'defend',
      );
    });

    it("'unknown', 'ACME' (uppercase) and malformed ids are 400 invalid_tenant naming the event", async () => {
      const before = await batches(ACME);
      for (const bad of ['unknown', ACME.toUpperCase(), 'ACME', '-x', 'a']) {
        assertInvalid(await ingest([event(), event({ tenant_id: bad })]), 'body/events/1/tenant_id', `ingest ${JSON.stringify(bad)}`);
        const defend = await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': sensor }, payload: event({ tenant_id: bad }) });
        assert.equal(defend.statusCode, 400, `defend ${JSON.stringify(bad)}: ${defend.body}`);
      }
      assert.equal(await batches(ACME), before, 'nothing stored');
    });

    it("events naming the key's own tenant are accepted, and stored in it", async () => {
      const before = await batches(ACME);
      const res = await ingest([event({ tenant_id: ACME }), event()]);
      assert.equal(res.statusCode, 202, res.body);
      assert.equal(await batches(ACME), before + 1);
    });

    it(
      'with the global key and X-Tenant-Id, an event naming another tenant ' + 'is refused; without the header the first tenant named binds the batch',
      async () => {
        const global = { 'x-api-key': GLOBAL_KEY, 'x-tenant-id': ACME };
        const [acmeBefore, betaBefore] = [await batches(ACME), await batches(BETA)];
        assertMismatch(await ingest([event({ tenant_id: BETA })], global), 'body/events/0/tenant_id', BETA, 'global key + header');
        assert.equal((await ingest([event({ tenant_id: ACME })], global)).statusCode, 202);
        const noHeader = { 'x-api-key': GLOBAL_KEY };
        assertMismatch(
          await ingest([event({ tenant_id: BETA }), event({ tenant_id: ACME })], noHeader),
          'body/events/1/tenant_id',
          ACME,
          'global key, two tenants',
          BETA,
        );
        assert.equal((await ingest([event({ tenant_id: BETA }), event()], noHeader)).statusCode, 202);
        const none = await ingest([event()], noHeader);
        assert.equal(none.statusCode, 400, 'a batch naming no tenant lands nowhere');
        assert.deepEqual([await batches(ACME), await batches(BETA)], [acmeBefore + 1, betaBefore + 1]);
      },
    );
  });

  describe('a tenant in the query string is a claim on every route', () => {
    const NAMED: Array<{ method: 'GET' | 'POST'; url: string; payload?: unknown }> = [
      { method: 'GET', url: '/keys' },
      { method: 'POST', url: '/defend', payload: event() },
      { method: 'POST', url: '/ingest', payload: { events: [event()] } },
      { method: 'GET', url: '/v1/decisions' },
      { method: 'GET', url: '/v1/decisions/stream' },
    ];

    it('GET /keys, POST /defend, POST /ingest, GET /v1/decisions, GET /v1/decisions/stream: another tenant 403, own tenant fine, malformed 400', async () => {
      const counted = await mismatches();
      for (const r of NAMED) {
        const label = `${r.method} ${r.url}`;
        const send = (query: string) =>
          t.app.inject({ method: r.method, url: `${r.url}?${query}`, headers: { 'x-api-key': admin }, ...(r.payload ? { payload: r.payload } : {}) });
        assertMismatch(await send(`tenant_id=${BETA}`), 'querystring/tenant_id', BETA, label);
        assertMismatch(await send(`tenant_id=${ACME}&tenant_id=${BETA}`), 'querystring/tenant_id', BETA, `${label} (repeated)`);
        const own = await send(`tenant_id=${ACME}`);
        assert.ok(own.statusCode >= 200 && own.statusCode < 300, `${label} own tenant: ${own.statusCode} ${own.body}`);
        for (const bad of ['unknown', ACME.toUpperCase(), ''])
          assertInvalid(await send(`tenant_id=${encodeURIComponent(bad)}`), 'querystring/tenant_id', `${label} ${JSON.stringify(bad)}`);
      }
      assert.equal(await mismatches(), counted + 2 * NAMED.length);
    });

    it('every protected route answers 403 tenant_mismatch to ?tenant_id=<another tenant>', async () => {
      const routes = registeredRoutes(t.app).filter(
        // The console's sign-in steps take no credential and hold no tenant data (test/core/console).
        (r) =>
          r.method !== 'HEAD' &&
          !PUBLIC_ROUTES.has(`${r.method} ${r.url}`) &&
          !TOKEN_ROUTES.has(`${r.method} ${r.url}`) &&
          !SIGN_IN_ROUTES.has(`${r.method} ${r.url}`),
      );
      assert.ok(routes.length >= 30, `${routes.length} routes`);
      for (const r of routes) {
        const url = r.url.replace(/:[A-Za-z0-9_]+/g, 'dummy1');
        const res = await t.app.inject({
          method: r.method as 'GET',
          url: `${url}?tenant_id=${BETA}`,
          headers: { 'x-api-key': admin },
          ...(['POST', 'PUT', 'PATCH'].includes(r.method) ? { payload: {} } : {}),
        });
        assertMismatch(res, 'querystring/tenant_id', BETA, `${r.method} ${r.url}`);
      }
    });

    it('with the global key the query names the tenant like X-Tenant-Id, and must agree with it', async () => {
      const keys = await t.app.inject({ url: `/keys?tenant_id=${ACME}`, headers: { 'x-api-key': GLOBAL_KEY } });
      assert.equal(keys.statusCode, 200, keys.body);
      assert.ok(keys.json().keys.every((k: { tenant_id: string }) => k.tenant_id === ACME) && keys.json().keys.length >= 2);
      assertMismatch(
        await t.app.inject({ url: `/keys?tenant_id=${BETA}`, headers: { 'x-api-key': GLOBAL_KEY, 'x-tenant-id': ACME } }),
        'querystring/tenant_id',
        BETA,
        'global key, header and query disagree',
      );
    });
  });
});
