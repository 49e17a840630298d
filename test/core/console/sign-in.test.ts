import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SESSION_COOKIE } from '../../../src/core/console/cookies.js';
import { call, csrfOf, send, signIn, startConsoleRig, type ConsoleRig } from './helpers.js';

describe('console sign-in through the embedded OpenID provider (authorization code + PKCE)', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig();
  });
  after(async () => rig?.close());

  it('/, /admin and /console send a browser without a session to /login, which redirects to the IdP with PKCE', async () => {
    for (const path of ['/', '/admin']) {
      const res = await fetch(`${rig.baseUrl}${path}`, { redirect: 'manual' });
      assert.equal(res.status, 302, path);
      assert.equal(res.headers.get('location'), '/console');
    }
    const page = await fetch(`${rig.baseUrl}/console`, { redirect: 'manual' });
    assert.equal(page.status, 302);
    assert.equal(page.headers.get('location'), '/login');
    const login = await fetch(`${rig.baseUrl}/login`, { redirect: 'manual' });
    assert.equal(login.status, 302);
    const to = new URL(login.headers.get('location')!);
    assert.notEqual(to.origin, new URL(rig.baseUrl).origin, 'the IdP is another origin');
    assert.equal(to.searchParams.get('response_type'), 'code');
    assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
    assert.match(to.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok(to.searchParams.get('state') && to.searchParams.get('nonce'));
    assert.equal(to.searchParams.get('redirect_uri'), `${rig.baseUrl}/auth/callback`);
    const flowCookie = login.headers.getSetCookie().find((c) => c.startsWith('fg_sign_in='));
    assert.ok(flowCookie, 'the sign-in in flight is kept in a cookie');
    assert.match(flowCookie, /HttpOnly/);
    assert.match(flowCookie, /Path=\/auth\/callback/);
  });

  it('alice signs in: a database session in an HttpOnly, SameSite=Lax cookie (no Secure over http), resolved to her IdP subject and mapped scopes', async () => {
    const { jar, callback } = await signIn(rig, rig.user('alice'));
    assert.equal(callback.status, 302, await callback.text());
    assert.equal(callback.headers.get('location'), '/console');
    const cookie = jar.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`) && !/Max-Age=0/.test(c))!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.match(cookie, /Path=\//);
    assert.doesNotMatch(cookie, /Secure/);
    const me = await call(rig, jar, 'GET', '/console/session');
    assert.equal(me.status, 200);
    assert.equal(me.json.subject, 'oidc:demo-alice');
    assert.equal(me.json.tenant_id, rig.tenantId);
    assert.deepEqual(me.json.scopes, ['admin']);
    // The page itself is served now, with its strict CSP.
    const page = await send(jar, `${rig.baseUrl}/console`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
    // Only the digest of the cookie's secret is stored.
    const secret = jar.get(rig.baseUrl, SESSION_COOKIE)!;
    const rows = await rig.platform.db.withTenant(rig.tenantId, (tx) => tx.selectFrom('console_sessions').selectAll().execute());
    assert.equal(rows.length, 1);
    assert.ok(!JSON.stringify(rows).includes(secret));
    // The sign-in is in the tenant's audit trail, by the person.
    const audit = await call(rig, jar, 'GET', '/ledger/entries?log=audit&start=0&end=50');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test reads whatever JSON the server answered
    assert.ok(audit.json.entries.some((e: any) => e.record.action === 'console.sign_in' && e.record.actor === 'oidc:demo-alice'));
  });

  it('a wrong password gets the login form again and no session', async () => {
    const { jar, callback } = await signIn(rig, { username: 'alice', password: 'not-her-password' });
    assert.equal(callback.status, 401);
    assert.match(await callback.text(), /Wrong username or password/);
    assert.equal(jar.get(rig.baseUrl, SESSION_COOKIE), undefined);
  });

  it('a callback without the sign-in cookie, or with a forged one, opens no session', async () => {
    const res = await fetch(`${rig.baseUrl}/auth/callback?code=abc&state=def`, { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.getSetCookie().length, 0);
    const forged = await fetch(`${rig.baseUrl}/auth/callback?code=abc&state=def`, {
      redirect: 'manual',
      headers: { cookie: 'fg_sign_in=eyJ2ZXJpZmllciI6IngiLCJzdGF0ZSI6ImRlZiIsIm5vbmNlIjoibiIsImV4cCI6OTk5OTk5OTk5OTk5OX0.AAAA' },
    });
    assert.equal(forged.status, 400);
  });

  it('a session acts for its own tenant only, like a key (X-Tenant-Id naming another is 403)', async () => {
    const { jar } = await signIn(rig, rig.user('bob'));
    const other = await call(rig, jar, 'GET', '/decisions', undefined, { 'x-tenant-id': 'someone-else' });
    assert.equal(other.status, 403);
    assert.equal(other.json.code, 'tenant_mismatch');
    assert.match(other.json.detail, /this session acts for tenant/);
    const own = await call(rig, jar, 'GET', '/decisions');
    assert.equal(own.status, 200);
    assert.ok(await csrfOf(rig, jar));
  });
});

describe('console sign-in behind TLS', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig({ env: { FG_TRUST_PROXY: 'true' } });
  });
  after(async () => rig?.close());

  it('the session cookie is Secure when the request came over https (a trusted proxy says so)', async () => {
    const { jar, callback } = await signIn(rig, rig.user('alice'), { 'x-forwarded-proto': 'https' });
    assert.equal(callback.status, 302);
    const cookie = jar.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
  });
});

describe('console sessions on Postgres (row-level security, the lookup function as the app role)', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig({ db: 'postgres' });
  });
  after(async () => rig?.close());

  it('signs in, is found by its cookie across tenants only through fg_console_session_lookup, and signs out', async () => {
    const { jar, callback } = await signIn(rig, rig.user('bob'));
    assert.equal(callback.status, 302);
    const me = await call(rig, jar, 'GET', '/console/session');
    assert.equal(me.status, 200);
    assert.equal(me.json.subject, 'oidc:demo-bob');
    // Outside its tenant's transaction the app role sees no session row (FORCE ROW LEVEL SECURITY).
    const visible = await rig.platform.db.db.selectFrom('console_sessions').selectAll().execute();
    assert.equal(visible.length, 0);
    const inTenant = await rig.platform.db.withTenant(rig.tenantId, (tx) => tx.selectFrom('console_sessions').select('subject').execute());
    assert.deepEqual(
      inTenant.map((r) => r.subject),
      ['oidc:demo-bob'],
    );
    const out = await call(rig, jar, 'POST', '/logout', undefined, { 'x-csrf-token': me.json.csrf_token });
    assert.equal(out.status, 204);
    assert.equal((await call(rig, jar, 'GET', '/console/session')).status, 401);
  });
});
