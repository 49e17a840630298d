import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { stripeSignatureHeader } from '../../../src/forge/spawn/stripe.js';
import { MAX_INPUT_DEPTH, unsafeInputIssues } from '../../../src/platform/http/input-guard.js';
import { registeredRoutes } from '../../../src/platform/http/server.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { firstError } from '../../helpers/problems.js';

const NUL = '\u0000';
const LONE = '\uD800';
const WEBHOOK_SECRET = 'whsec_input_guard_test';

/** A concrete URL for a route pattern: the first :param gets `first`, the others a dummy value. */
function concrete(url: string, first = 'dummy1'): { url: string; param: string | undefined } {
  let param: string | undefined;
  const out = url.replace(/:([A-Za-z0-9_]+)(\([^)]*\))?/g, (_m, name: string) => {
    if (param !== undefined) return 'dummy1';
    param = name;
    return first;
  });
  return { url: out.replace(/\*/g, 'dummy/path'), param };
}

/** The problem names `path` as refused input (the guard's answer, not a schema error or a 500). */
function assertNamed(res: LightMyRequestResponse, path: string, what: RegExp, label: string): void {
  assert.equal(res.statusCode, 400, `${label}: ${res.statusCode} ${res.body}`);
  const body = res.json();
  assert.equal(body.code, 'validation_failed', label);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, label);
  assert.equal(firstError(body)?.path, path, `${label}: ${res.body}`);
  assert.match(firstError(body)!.message, what, label);
  assert.ok(String(body.detail).startsWith(path), label);
}

describe('input guard (unit)', () => {
  it('names NUL and lone surrogates in values and member names at any depth, in document order', () => {
    const input = { a: 'fine', b: [1, 'x', { [`k${NUL}`]: 'v' }], c: { d: { e: `tail${LONE}` } }, f: `${NUL}` };
    assert.deepEqual(unsafeInputIssues(input, 'body'), [
      { path: 'body/b/2/k\\u0000', message: 'is a field name that contains a NUL character (U+0000), which is not accepted' },
      { path: 'body/c/d/e', message: 'contains a lone UTF-16 surrogate (not Unicode text), which is not accepted' },
      { path: 'body/f', message: 'contains a NUL character (U+0000), which is not accepted' },
    ]);
    assert.deepEqual(
      unsafeInputIssues({ 'a/b~c': NUL }, 'body').map((i) => i.path),
      ['body/a~1b~0c'],
      'member names are JSON Pointer segments',
    );
    assert.deepEqual(
      unsafeInputIssues(`${LONE}x`, 'querystring').map((i) => i.path),
      ['querystring'],
    );
  });

  it('accepts ordinary text: surrogate pairs (emoji), U+FFFD, other control characters, empty strings', () => {
    assert.deepEqual(unsafeInputIssues({ e: '\u{1F600} ok', r: '\uFFFD', c: '\u0001\t\n', k: '', '\u{1F511}': 1 }, 'body'), []);
  });

  it(`refuses nesting past ${MAX_INPUT_DEPTH} levels, without recursing itself (100,000 levels)`, () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const issues = unsafeInputIssues({ x: deep }, 'body');
    assert.equal(issues.length, 1);
    assert.match(issues[0]!.message, new RegExp(`nests deeper than ${MAX_INPUT_DEPTH} levels`));
    let ok: unknown = 'leaf';
    for (let i = 0; i < MAX_INPUT_DEPTH - 1; i++) ok = { n: ok };
    assert.deepEqual(unsafeInputIssues(ok, 'body'), [], `${MAX_INPUT_DEPTH - 1} levels are fine`);
  });
});

describe('every registered route refuses NUL and lone surrogates at the edge (role all)', () => {
  let t: TestApp;
  const routes = () => registeredRoutes(t.app);
  before(async () => {
    t = await startTestApp({ env: { STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET } });
  });
  after(async () => t?.close());
  const admin = () => ({ 'x-api-key': t.adminKey });

  it('a NUL or a lone surrogate in a query parameter (value or name): 400 naming it, never 5xx', async () => {
    assert.ok(routes().length >= 40, `${routes().length} routes`);
    for (const r of routes()) {
      const label = `${r.method} ${r.url}`;
      const { url } = concrete(r.url);
      for (const [query, path, what] of [
        [`q=a%00b`, 'querystring/q', /NUL/],
        [`%00=1`, 'querystring/\\u0000', /field name.*NUL/],
        [`q=${encodeURIComponent('x')}%ED%A0%80`, '', /./],
      ] as const) {
        const res = await t.app.inject({ method: r.method as 'GET', url: `${url}?${query}`, headers: admin() });
        // A route whose dependency this app lacks (console sign-in without an IdP) answers 503 to any
        // query; the hostile one must not change that answer into anything else.
        if (res.statusCode === 503 && path === '' && (await t.app.inject({ method: r.method as 'GET', url, headers: admin() })).statusCode === 503) continue;
        assert.ok(res.statusCode < 500, `${label}?${query}: ${res.statusCode} ${res.body}`);
        if (r.method === 'HEAD' || path === '') continue; // HEAD has no body; an encoded lone surrogate decodes to U+FFFD
        assertNamed(res, path, what, `${label}?${query}`);
      }
    }
  });

  it('a NUL or a lone surrogate in a body string or a body member name: 400 naming it, on every route that takes a body', async () => {
    const withBody = routes().filter((r) => ['POST', 'PUT', 'PATCH'].includes(r.method));
    assert.ok(withBody.length >= 15, `${withBody.length} routes with a body`);
    for (const r of withBody) {
      const label = `${r.method} ${r.url}`;
      const { url } = concrete(r.url);
      if (r.url === '/v1/billing/stripe/webhook') continue; // raw signed text; its own test below
      for (const [payload, path, what] of [
        [{ name: `a${NUL}b` }, 'body/name', /NUL/],
        [{ outer: { list: ['ok', `x${LONE}`] } }, 'body/outer/list/1', /lone UTF-16 surrogate/],
        [{ [`k${NUL}`]: 'v' }, 'body/k\\u0000', /field name.*NUL/],
      ] as const) {
        const res = await t.app.inject({ method: r.method as 'POST', url, headers: admin(), payload });
        assertNamed(res, path, what, label);
      }
    }
  });

  it('a NUL in a path parameter: 400 naming it, on every route that has one', async () => {
    const withParams = routes().filter((r) => r.url.includes(':'));
    assert.ok(withParams.length >= 15, `${withParams.length} routes with parameters`);
    for (const r of withParams) {
      const { url, param } = concrete(r.url, 'a%00b');
      const res = await t.app.inject({
        method: r.method as 'GET',
        url,
        headers: admin(),
        ...(['POST', 'PUT', 'PATCH'].includes(r.method) ? { payload: {} } : {}),
      });
      if (r.method === 'HEAD') {
        assert.equal(res.statusCode, 400, `${r.method} ${r.url}`);
        continue;
      }
      assertNamed(res, `params/${param}`, /NUL/, `${r.method} ${r.url}`);
    }
  });

  it('a NUL in a header that reaches the database: X-Client-Id is named, X-Tenant-Id is an invalid tenant', async () => {
    for (const r of routes().filter((x) => x.method !== 'HEAD')) {
      const { url } = concrete(r.url);
      const res = await t.app.inject({
        method: r.method as 'GET',
        url,
        headers: { ...admin(), 'x-client-id': `app${NUL}` },
        ...(['POST', 'PUT', 'PATCH'].includes(r.method) ? { payload: {} } : {}),
      });
      assertNamed(res, 'headers/x-client-id', /NUL/, `${r.method} ${r.url}`);
    }
    const tenant = await t.app.inject({ url: '/decisions', headers: { ...admin(), 'x-tenant-id': `${t.tenantId}${NUL}` } });
    assert.equal(tenant.statusCode, 400, tenant.body);
    assert.equal(tenant.json().code, 'invalid_tenant');
  });

  it(
    'raw bytes cannot smuggle either character past the escape-free fast path: ' + 'a raw NUL is malformed JSON, an encoded surrogate decodes to U+FFFD',
    async () => {
      const raw = (bytes: number[]) => Buffer.concat([Buffer.from('{"scopes":["decisions:read"],"name":"a'), Buffer.from(bytes), Buffer.from('b"}')]);
      const nul = await t.app.inject({ method: 'POST', url: '/keys', headers: { ...admin(), 'content-type': 'application/json' }, payload: raw([0x00]) });
      assert.equal(nul.statusCode, 400, nul.body);
      assert.equal(nul.json().code, 'malformed_json');
      const surrogate = await t.app.inject({
        method: 'POST',
        url: '/keys',
        headers: { ...admin(), 'content-type': 'application/json' },
        payload: raw([0xed, 0xa0, 0x80]),
      });
      assert.equal(surrogate.statusCode, 201, surrogate.body);
      assert.ok(surrogate.json().name.startsWith('a\uFFFD'), JSON.stringify(surrogate.json().name));
    },
  );

  it('an unauthenticated request with a NUL is still 401: the guard runs after the gate', async () => {
    const res = await t.app.inject({ url: '/decisions?rule=%00' });
    assert.equal(res.statusCode, 401);
  });

  it('a path the router cannot decode (an encoded lone surrogate) is 400 problem+json', async () => {
    const res = await t.app.inject({ url: '/decisions/%ED%A0%80', headers: admin() });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.json().code, 'bad_request');
  });

  it('the Stripe webhook (a raw signed body) refuses a NUL inside the JSON it decodes', async () => {
    const body = JSON.stringify({
      type: 'checkout.session.completed',
      data: {
        object: {
          id: 'cs_nul',
          payment_status: 'paid',
          metadata: { tenant_id: t.tenantId, subject: `learner${NUL}`, track: 'netplus', tier: 'basic', credits: '1' },
        },
      },
    });
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/billing/stripe/webhook',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignatureHeader(body, WEBHOOK_SECRET, Math.floor(Date.now() / 1000)) },
      payload: body,
    });
    assertNamed(res, 'body/data/object/metadata/subject', /NUL/, 'stripe webhook');
  });
});

const event = (extra: Record<string, unknown> = {}, payload: Record<string, unknown> = { src_ip: '100.64.90.1' }) => ({
  source: 'sshd',
  event_type: 'auth.failure',
  occurred_at: new Date().toISOString(),
  payload,
  ...extra,
});

for (const db of ['embedded', 'postgres'] as const) {
  describe(`the reported NUL, surrogate, prototype and nesting cases store nothing and never 500 (${db})`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp({ db });
    });
    after(async () => t?.close());
    const admin = () => ({ 'x-api-key': t.adminKey });
    const counts = async () => ({
      decisions: (
        await t.platform.db.withTenant(t.tenantId, (tx) =>
          tx
            .selectFrom('decisions')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow(),
        )
      ).n,
      batches: (
        await t.platform.db.withTenant(t.tenantId, (tx) =>
          tx
            .selectFrom('ingest_batches')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow(),
        )
      ).n,
      keys: (await t.auth.store.listKeys(t.tenantId)).length,
    });

    it('/defend, /ingest, /tenants, /keys, GET /decisions?rule, GET /v1/scores?subject: 400 naming the field', async () => {
      const before = await counts();
      const cases: Array<[string, InjectOptions, string]> = [
        ['/defend source', { method: 'POST', url: '/defend', payload: event({ source: `sshd${NUL}` }) }, 'body/source'],
        [
          '/defend payload string',
          { method: 'POST', url: '/defend', payload: event({}, { src_ip: '100.64.90.2', username: `root${NUL}` }) },
          'body/payload/username',
        ],
        [
          '/defend nested payload string',
          { method: 'POST', url: '/defend', payload: event({}, { src_ip: '100.64.90.2', tls: { sni: [`a${NUL}`] } }) },
          'body/payload/tls/sni/0',
        ],
        ['/defend payload key', { method: 'POST', url: '/defend', payload: event({}, { [`user${NUL}`]: 'x' }) }, 'body/payload/user\\u0000'],
        ['/ingest', { method: 'POST', url: '/ingest', payload: { events: [event(), event({ source: `s${NUL}` })] } }, 'body/events/1/source'],
        ['/tenants name', { method: 'POST', url: '/tenants', payload: { id: 'nul-probe', name: `n${NUL}` } }, 'body/name'],
        ['/keys name', { method: 'POST', url: '/keys', payload: { scopes: ['decisions:read'], name: `n${NUL}` } }, 'body/name'],
        ['/keys owner', { method: 'POST', url: '/keys', payload: { scopes: ['decisions:read'], owner: `o${NUL}` } }, 'body/owner'],
        ['GET /decisions?rule', { url: '/decisions?rule=%00' }, 'querystring/rule'],
        ['GET /v1/scores?subject', { url: '/v1/scores?subject=%00' }, 'querystring/subject'],
      ];
      for (const [label, req, path] of cases) assertNamed(await t.app.inject({ ...req, headers: admin() }), path, /NUL/, label);
      assert.deepEqual(await counts(), before, 'nothing was stored');
      assert.equal(await t.auth.store.tenantExists('nul-probe'), false);
    });

    it('lone surrogates in /defend and /keys: 400 naming the field (they were 500s too)', async () => {
      const raw = (body: object, marker: string) => JSON.stringify(body).replace(marker, '\\ud800');
      const defend = await t.app.inject({
        method: 'POST',
        url: '/defend',
        headers: { ...admin(), 'content-type': 'application/json' },
        payload: raw(event({}, { src_ip: '100.64.90.3', note: 'MARK' }), 'MARK'),
      });
      assertNamed(defend, 'body/payload/note', /lone UTF-16 surrogate/, '/defend');
      const key = await t.app.inject({
        method: 'POST',
        url: '/keys',
        headers: { ...admin(), 'content-type': 'application/json' },
        payload: raw({ scopes: ['decisions:read'], name: 'MARK' }, 'MARK'),
      });
      assertNamed(key, 'body/name', /lone UTF-16 surrogate/, '/keys');
    });

    it('__proto__ and constructor.prototype members: 400 naming the member, not "not valid JSON"', async () => {
      const send = (payload: string) => t.app.inject({ method: 'POST', url: '/defend', headers: { ...admin(), 'content-type': 'application/json' }, payload });
      const proto = await send(`{"source":"s","event_type":"auth.failure","occurred_at":"${new Date().toISOString()}","payload":{"__proto__":{"polluted":1}}}`);
      assertNamed(proto, 'body/payload/__proto__', /not accepted/, '__proto__');
      const ctor = await send(
        `{"source":"s","event_type":"auth.failure","occurred_at":"${new Date().toISOString()}","payload":{"constructor":{"prototype":{"polluted":1}}}}`,
      );
      assertNamed(ctor, 'body/payload/constructor', /not accepted/, 'constructor.prototype');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      const broken = await send('{"source": "s",');
      assert.equal(broken.statusCode, 400);
      assert.equal(broken.json().code, 'malformed_json');
      assert.match(broken.json().detail, /JSON/);
    });

    it('a governance change nested 100,000 levels deep is 400 (it overflowed the validator stack: 500)', async () => {
      const when = `${'{"not":'.repeat(100_000)}{"field":"source","eq":"x"}${'}'.repeat(100_000)}`;
      const body =
        `{"kind":"ruleset","justification":"deep nesting ` +
        `probe","content":{"version":"x","thresholds":{"low":1,"medium":2,"high":3,"critical":4},"rules":[{"id":"r","description":"d","score":1,"when":${when}}]}}`;
      const res = await t.app.inject({
        method: 'POST',
        url: '/governance/changes',
        headers: { ...admin(), 'content-type': 'application/json' },
        payload: body,
      });
      assert.equal(res.statusCode, 400, res.body.slice(0, 300));
      assert.match(res.json().errors[0].message, /nests deeper than/);
    });
  });
}
