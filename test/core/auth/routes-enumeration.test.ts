import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PUBLIC_ROUTES, TOKEN_ROUTES, CONSOLE_PAGE_ROUTES, SIGN_IN_ROUTES } from '../../../src/core/auth/gate.js';
import { registeredRoutes } from '../../../src/platform/http/server.js';
import { ROLE_NAMES } from '../../../src/role-names.js';
import { startRoleApp } from '../../helpers/app.js';

/** The documented public list (docs/auth.md); changing it is a security decision, made here on purpose. */
const DOCUMENTED_PUBLIC = ['GET /health/live', 'GET /health/ready', 'GET /metrics'];
/** Routes that check their own token instead of a key (docs/auth.md): the learner's access URL, the learner portal and the Stripe webhook. */
const DOCUMENTED_TOKEN = [
  'GET /v1/access/:scenario_id',
  'GET /v1/access/:scenario_id/assets/:name',
  'GET /v1/access/:scenario_id/results/:name',
  'GET /v1/access/:scenario_id/status',
  'GET /v1/access/:scenario_id/terminal/:device',
  'GET /v1/portal',
  'GET /v1/portal/assets/:name',
  'GET /v1/portal/labs/:scenario_id/certificate',
  'GET /v1/portal/labs/:scenario_id/results/:name',
  'POST /v1/access/:scenario_id/end',
  'POST /v1/access/:scenario_id/extend',
  'POST /v1/access/:scenario_id/hints',
  'POST /v1/access/:scenario_id/reset',
  'POST /v1/access/:scenario_id/submit',
  'POST /v1/billing/stripe/webhook',
  'POST /v1/portal/labs',
  'POST /v1/portal/labs/:scenario_id/enter',
  'POST /v1/portal/sign-in',
  'POST /v1/portal/sign-out',
];

/** The console's sign-in steps (docs/console.md): no credential can precede them. */
const DOCUMENTED_SIGN_IN = ['GET /', 'GET /admin', 'GET /auth/callback', 'GET /login'];
/** The console's page and assets: without a session they send the browser to /login (302), never serve. */
const DOCUMENTED_CONSOLE_PAGES = ['GET /console', 'GET /console/assets/:name'];

/** A concrete URL for a route pattern: every :param and wildcard gets a dummy value. */
function concrete(url: string): string {
  return url.replace(/:[A-Za-z0-9_]+(\([^)]*\))?/g, 'dummy1').replace(/\*/g, 'dummy/path');
}

describe('every route of every role is behind the auth gate', () => {
  it('the public and token-authenticated lists are exactly the documented short lists', () => {
    assert.deepEqual([...PUBLIC_ROUTES].sort(), DOCUMENTED_PUBLIC);
    assert.deepEqual([...TOKEN_ROUTES].sort(), DOCUMENTED_TOKEN);
    assert.deepEqual([...SIGN_IN_ROUTES].sort(), DOCUMENTED_SIGN_IN);
    assert.deepEqual([...CONSOLE_PAGE_ROUTES].sort(), DOCUMENTED_CONSOLE_PAGES);
  });

  for (const role of ROLE_NAMES) {
    it(`role ${role}: each registered route not on the public list answers 401 problem+json without a key`, async () => {
      const t = await startRoleApp(role);
      try {
        const routes = registeredRoutes(t.app);
        // The collector sees the platform's own routes and the role's plugins alike.
        assert.ok(
          routes.some((r) => r.method === 'GET' && r.url === '/health/detailed'),
          'collector saw the health routes',
        );
        if (role === 'all' || role === 'core')
          assert.ok(
            routes.some((r) => r.method === 'DELETE' && r.url === '/keys/:id'),
            'collector saw plugin routes',
          );
        const answeredWithoutKey: string[] = [];
        for (const r of routes) {
          const id = `${r.method} ${r.url}`;
          const res = await t.app.inject({
            method: r.method as 'GET',
            url: concrete(r.url),
            ...(r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH' ? { payload: {} } : {}),
          });
          if (PUBLIC_ROUTES.has(id) || TOKEN_ROUTES.has(id) || SIGN_IN_ROUTES.has(id)) {
            assert.notEqual(res.statusCode, 401, `${role} ${id} is public`);
            answeredWithoutKey.push(id);
            continue;
          }
          if (CONSOLE_PAGE_ROUTES.has(id)) {
            // Without a session the page is not served: the browser is sent to sign in.
            assert.equal(res.statusCode, 302, `${role} ${id} without a session`);
            assert.equal(res.headers.location, '/login', `${role} ${id}`);
            continue;
          }
          assert.equal(res.statusCode, 401, `${role} ${id} answered ${res.statusCode} without a key: ${res.body}`);
          if (r.method !== 'HEAD') {
            assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `${role} ${id}`);
            assert.equal(res.json().code, 'unauthorized', `${role} ${id}`);
          }
          // A wrong key is refused the same way (no route trusts a key it cannot resolve).
          const wrong = await t.app.inject({
            method: r.method as 'GET',
            url: concrete(r.url),
            headers: { 'x-api-key': 'not-a-key' },
            remoteAddress: `127.0.${routes.indexOf(r) % 250}.${ROLE_NAMES.indexOf(role) + 1}`,
          });
          assert.equal(wrong.statusCode, 401, `${role} ${id} with a malformed key`);
        }
        // Every role serves the whole public list, and nothing else answers without a key but the
        // token routes it serves.
        const tokenRoutesServed = routes.map((r) => `${r.method} ${r.url}`).filter((id) => TOKEN_ROUTES.has(id) || SIGN_IN_ROUTES.has(id));
        assert.deepEqual([...new Set(answeredWithoutKey)].sort(), [...new Set([...DOCUMENTED_PUBLIC, ...tokenRoutesServed])].sort(), role);
      } finally {
        await t.close();
      }
    });
  }
});
