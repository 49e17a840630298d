import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SESSION_MAX_AGE_MS } from '../../../src/core/console/session-store.js';
import { blockingRuleset } from '../governance/helpers.js';
import { call, csrfOf, signIn, startConsoleRig, type ConsoleRig } from './helpers.js';

const MINUTE = 60_000;

describe('console sessions: expiry, sign-out, revocation, CSRF, one authorization path', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig({ env: { FG_SESSION_IDLE_MINUTES: '30' } });
  });
  after(async () => rig?.close());

  it('a session unused for the idle limit ends (the clock is moved, not waited for)', async () => {
    const { jar } = await signIn(rig, rig.user('alice'));
    assert.equal((await call(rig, jar, 'GET', '/console/session')).status, 200);
    rig.clock.advance(29 * MINUTE);
    assert.equal((await call(rig, jar, 'GET', '/console/session')).status, 200, 'used within the idle limit');
    rig.clock.advance(29 * MINUTE);
    assert.equal((await call(rig, jar, 'GET', '/console/session')).status, 200, 'the last use restarted the idle limit');
    rig.clock.advance(31 * MINUTE);
    const idle = await call(rig, jar, 'GET', '/console/session');
    assert.equal(idle.status, 401);
    assert.equal(idle.json.code, 'unauthorized');
    assert.ok(
      rig.logs.lines.some((l) => l.reason === 'session_idle'),
      'the security log says why',
    );
  });

  it('a session in use every 20 minutes still ends 8 hours after sign-in', async () => {
    const { jar } = await signIn(rig, rig.user('bob'));
    let elapsed = 0;
    while (elapsed + 20 * MINUTE < SESSION_MAX_AGE_MS) {
      rig.clock.advance(20 * MINUTE);
      elapsed += 20 * MINUTE;
      assert.equal((await call(rig, jar, 'GET', '/console/session')).status, 200, `after ${elapsed / MINUTE} min`);
    }
    rig.clock.advance(SESSION_MAX_AGE_MS - elapsed);
    assert.equal((await call(rig, jar, 'GET', '/console/session')).status, 401, 'at 8 hours');
    assert.ok(rig.logs.lines.some((l) => l.reason === 'session_expired'));
  });

  it('sign-out revokes the session in the database: the old cookie is refused afterwards', async () => {
    const { jar } = await signIn(rig, rig.user('alice'));
    const csrf = await csrfOf(rig, jar);
    const cookie = jar.header(rig.baseUrl)!;
    const out = await call(rig, jar, 'POST', '/logout', undefined, { 'x-csrf-token': csrf });
    assert.equal(out.status, 204);
    // Replayed by someone who kept the cookie:
    const replay = await fetch(`${rig.baseUrl}/console/session`, { headers: { cookie } });
    assert.equal(replay.status, 401);
    const audit = await rig.platform.db.withTenant(rig.tenantId, (tx) =>
      tx
        .selectFrom('console_sessions')
        .select(['revoked_at', 'revoked_by'])
        .where('subject', '=', 'oidc:demo-alice')
        .where('revoked_at', 'is not', null)
        .execute(),
    );
    assert.ok(audit.some((r) => r.revoked_by === 'oidc:demo-alice'));
  });

  it('a state-changing request without the session CSRF token is refused, with it accepted; a token of another session is refused', async () => {
    const alice = await signIn(rig, rig.user('alice'));
    const bob = await signIn(rig, rig.user('bob'));
    const body = { name: 'csrf-probe', scopes: ['decisions:read'] };
    const none = await call(rig, alice.jar, 'POST', '/keys', body);
    assert.equal(none.status, 403);
    assert.equal(none.json.reason, 'csrf');
    const bobsToken = await csrfOf(rig, bob.jar);
    const crossed = await call(rig, alice.jar, 'POST', '/keys', body, { 'x-csrf-token': bobsToken });
    assert.equal(crossed.status, 403, "bob's token is not alice's");
    const ok = await call(rig, alice.jar, 'POST', '/keys', body, { 'x-csrf-token': await csrfOf(rig, alice.jar) });
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    assert.equal(ok.json.owner, 'oidc:demo-alice', 'a key minted in the console belongs to the signed-in person');
    assert.ok(rig.logs.lines.some((l) => l.reason === 'csrf' && l.type === 'auth_event'));
  });

  it("an admin lists the tenant's sessions and revokes another person's; that person is signed out at once", async () => {
    const alice = await signIn(rig, rig.user('alice'));
    const bob = await signIn(rig, rig.user('bob'));
    const bobMe = await call(rig, bob.jar, 'GET', '/console/session');
    const list = await call(rig, alice.jar, 'GET', '/console/sessions');
    assert.equal(list.status, 200);
    assert.equal(list.json.scope, 'tenant');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test reads whatever JSON the server answered
    assert.ok(list.json.sessions.some((s: any) => s.id === bobMe.json.session_id && s.subject === 'oidc:demo-bob'));
    const revoked = await call(rig, alice.jar, 'DELETE', `/console/sessions/${bobMe.json.session_id}`, undefined, {
      'x-csrf-token': await csrfOf(rig, alice.jar),
    });
    assert.equal(revoked.status, 204);
    assert.equal((await call(rig, bob.jar, 'GET', '/console/session')).status, 401);
    // An API key with the admin scope takes the same route (one authorization path).
    const byKey = await fetch(`${rig.baseUrl}/console/sessions`, { headers: { 'x-api-key': rig.adminKey } });
    assert.equal(byKey.status, 200);
    const again = await fetch(`${rig.baseUrl}/console/sessions/${bobMe.json.session_id}`, { method: 'DELETE', headers: { 'x-api-key': rig.adminKey } });
    assert.equal(again.status, 404, 'already revoked');
  });

  it('someone without the admin scope sees and revokes only their own sessions', async () => {
    const created = await fetch(`${rig.baseUrl}/keys`, {
      method: 'POST',
      headers: { 'x-api-key': rig.adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'reader', scopes: ['decisions:read'] }),
    });
    const reader = ((await created.json()) as { key: string }).key;
    const list = await fetch(`${rig.baseUrl}/console/sessions`, { headers: { 'x-api-key': reader } });
    const body = (await list.json()) as { scope: string; sessions: unknown[] };
    assert.equal(body.scope, 'own');
    assert.deepEqual(body.sessions, []);
    const alice = await signIn(rig, rig.user('alice'));
    const aliceSession = (await call(rig, alice.jar, 'GET', '/console/session')).json.session_id;
    const refused = await fetch(`${rig.baseUrl}/console/sessions/${aliceSession}`, { method: 'DELETE', headers: { 'x-api-key': reader } });
    assert.equal(refused.status, 404);
    assert.equal((await call(rig, alice.jar, 'GET', '/console/session')).status, 200);
  });

  it('the two-person rule compares IdP subjects: alice cannot approve her change, nor with a key she minted in the console; bob can', async () => {
    const alice = await signIn(rig, rig.user('alice'));
    const bob = await signIn(rig, rig.user('bob'));
    const aliceCsrf = await csrfOf(rig, alice.jar);
    const proposed = await call(
      rig,
      alice.jar,
      'POST',
      '/governance/changes',
      { kind: 'ruleset', content: blockingRuleset('console-two-person-1'), justification: 'block WordPress probes' },
      { 'x-csrf-token': aliceCsrf },
    );
    assert.equal(proposed.status, 201, JSON.stringify(proposed.json));
    assert.equal(proposed.json.author, 'oidc:demo-alice');
    const id = proposed.json.id as string;
    const self = await call(rig, alice.jar, 'POST', `/governance/changes/${id}/approve`, {}, { 'x-csrf-token': aliceCsrf });
    assert.equal(self.status, 403);
    assert.equal(self.json.code, 'two_person_rule');
    assert.equal(self.json.reason, 'self_approval');
    const minted = await call(rig, alice.jar, 'POST', '/keys', { name: 'alice-approver', scopes: ['admin'] }, { 'x-csrf-token': aliceCsrf });
    assert.equal(minted.status, 201);
    const viaKey = await fetch(`${rig.baseUrl}/governance/changes/${id}/approve`, {
      method: 'POST',
      headers: { 'x-api-key': minted.json.key, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(viaKey.status, 403);
    assert.equal(((await viaKey.json()) as { code: string }).code, 'two_person_rule');
    const byBob = await call(rig, bob.jar, 'POST', `/governance/changes/${id}/approve`, { reason: 'reviewed' }, { 'x-csrf-token': await csrfOf(rig, bob.jar) });
    assert.equal(byBob.status, 200, JSON.stringify(byBob.json));
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test reads whatever JSON the server answered
    assert.ok(byBob.json.approvals.some((a: any) => a.subject === 'oidc:demo-bob' && a.decision === 'approve'));
  });
});
