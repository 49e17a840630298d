import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { evaluate } from '../../../src/core/engine/evaluate.js';
import { MemoryWindowStore } from '../../../src/core/engine/windows.js';
import { NO_ENFORCEMENT } from '../../../src/core/engine/doctrine.js';
import type { SecurityEvent } from '../../../src/core/engine/event.js';
import { blockingRuleset, recent } from './helpers.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { createThrowawayDatabase } from '../../helpers/postgres.js';
import { startThrowawayNats } from '../../helpers/servers.js';

describe('governance', () => {
  let t: TestApp;
  const keys: Record<string, string> = {};
  before(async () => {
    t = await startTestApp({ roleOptions: { canaryEvents: { recentEvents: async (_tenant, limit) => recent.slice(0, limit) } } });
    const mk = async (name: string, scopes: Parameters<TestApp['auth']['store']['createKey']>[0]['scopes']) =>
      (keys[name] = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes, name })).key);
    await mk('author', ['governance:write']);
    await mk('approver', ['governance:approve']);
    await mk('admin1', ['admin']);
    await mk('admin2', ['admin']);
    await mk('reader', ['decisions:read']);
  });
  after(async () => t?.close());

  const post = (url: string, key: string, payload?: unknown) =>
    t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, ...(payload !== undefined ? { payload: payload as object } : {}) });
  const propose = (content: unknown, key = keys.author!, extra: object = {}) =>
    post('/governance/changes', key, { kind: 'ruleset', content, justification: 'block WordPress probes', ...extra });

  it("refuses invalid content with the engine schema's precise errors, and needs governance:write", async () => {
    const bad = await propose({ ...blockingRuleset('bad-1'), thresholds: { low: 1 } });
    assert.equal(bad.statusCode, 422);
    assert.match(bad.json().detail, /thresholds/);
    assert.ok(Array.isArray(bad.json().errors));
    assert.equal((await propose(blockingRuleset('x-1'), keys.reader)).statusCode, 403);
    assert.equal((await propose(blockingRuleset('x-1'), keys.approver)).statusCode, 403);
  });

  it('computes risk: a rule that can block is high risk, needing two admin approvals', async () => {
    const res = await propose(blockingRuleset('gov-risk-1'));
    assert.equal(res.statusCode, 201, res.body);
    const c = res.json();
    assert.equal(c.risk, 'high');
    assert.match(c.risk_reasons.join(), /wp-login-probe can block/);
    assert.equal(c.required_approvals, 2);
    assert.equal(c.approver_scope, 'admin');
    assert.equal(c.status, 'proposed');
  });

  it('approval rules: not the author, the required role, no double approval, nothing after withdrawal', async () => {
    const c = (await propose(blockingRuleset('gov-appr-1'))).json();
    const self = await post(`/governance/changes/${c.id}/approve`, keys.author!);
    assert.equal(self.statusCode, 403, 'the author key lacks governance:approve anyway');
    // An admin author cannot approve their own change either.
    const own = (await propose(blockingRuleset('gov-appr-2'), keys.admin1)).json();
    const selfAdmin = await post(`/governance/changes/${own.id}/approve`, keys.admin1!);
    assert.equal(selfAdmin.statusCode, 403);
    assert.equal(selfAdmin.json().reason, 'self_approval');
    const weak = await post(`/governance/changes/${c.id}/approve`, keys.approver!);
    assert.equal(weak.statusCode, 403);
    assert.deepEqual(weak.json().missing_scopes, ['admin']);
    assert.equal((await post(`/governance/changes/${c.id}/approve`, keys.admin1!)).statusCode, 200);
    const twice = await post(`/governance/changes/${c.id}/approve`, keys.admin1!);
    assert.equal(twice.statusCode, 409);
    assert.equal((await post(`/governance/changes/${c.id}/withdraw`, keys.author!, { reason: 'superseded' })).statusCode, 200);
    const late = await post(`/governance/changes/${c.id}/approve`, keys.admin2!);
    assert.equal(late.statusCode, 409);
    assert.equal(late.json().change_status, 'withdrawn');
  });

  it('end to end: propose, canary, approve, deploy (Cedar gate), the engine runs it, roll back, it reverts; all audited', async () => {
    const c = (await propose(blockingRuleset('gov-e2e-1'))).json();
    for (const k of ['admin1', 'admin2']) assert.equal((await post(`/governance/changes/${c.id}/approve`, keys[k]!)).statusCode, 200);
    const gated = await post(`/governance/changes/${c.id}/deploy`, keys.author!);
    assert.equal(gated.statusCode, 409, 'a high-risk change needs a passed canary first');
    assert.match(gated.json().detail, /deploy gate refused/);

    const canary = await post(`/governance/changes/${c.id}/canary`, keys.author!, { limit: 100 });
    assert.equal(canary.statusCode, 200, canary.body);
    const result = canary.json().canary;
    assert.equal(result.events_replayed, 100);
    assert.equal(result.decisions_changed, 2);
    assert.deepEqual(result.newly_blocked, ['ip:100.64.12.34']);
    assert.equal(result.deployed.ruleset, 'default-2025.1');
    assert.equal(result.proposed.ruleset, 'gov-e2e-1');
    const active0 = await t.governance.active.get(t.tenantId, 'ruleset');
    assert.equal(active0.version, 'default-2025.1', 'a canary has no side effects');

    const deployed = await post(`/governance/changes/${c.id}/deploy`, keys.author!);
    assert.equal(deployed.statusCode, 200, deployed.body);
    assert.equal(deployed.json().status, 'deployed');
    const active = await t.governance.active.get(t.tenantId, 'ruleset');
    assert.equal(active.version, 'gov-e2e-1');
    const decide = async (event: SecurityEvent) =>
      evaluate(event, {
        tenantId: t.tenantId,
        ruleset: (await t.governance.active.get(t.tenantId, 'ruleset')).content.compiled,
        doctrine: (await t.governance.active.get(t.tenantId, 'doctrine')).content.compiled,
        windows: new MemoryWindowStore(),
        enforcement: NO_ENFORCEMENT,
      });
    const withRule = await decide(recent[40]!);
    assert.equal(withRule.ruleset_version, 'gov-e2e-1');
    assert.ok(withRule.rules_triggered.includes('wp-login-probe'));

    assert.equal((await post(`/governance/changes/${c.id}/rollback`, keys.author!, {})).statusCode, 400, 'a reason is required');
    const rolled = await post(`/governance/changes/${c.id}/rollback`, keys.author!, { reason: 'false positives on the marketing site' });
    assert.equal(rolled.statusCode, 200, rolled.body);
    assert.equal(rolled.json().status, 'rolled_back');
    const reverted = await decide(recent[40]!);
    assert.equal(reverted.ruleset_version, 'default-2025.1');
    assert.ok(!reverted.rules_triggered.includes('wp-login-probe'));
    assert.equal((await post(`/governance/changes/${c.id}/approve`, keys.admin1!)).statusCode, 409);

    const audit = await t.ledger.ledger.entries(t.tenantId, 'audit', 0, 1000);
    const actions = audit.filter((e) => (e.record as { target?: string }).target === c.id).map((e) => (e.record as { action: string }).action);
    assert.deepEqual(actions, [
      'governance.propose',
      'governance.approve',
      'governance.approve',
      'governance.deploy_refused',
      'governance.canary',
      'governance.deploy',
      'governance.rollback',
      'governance.approve_refused',
    ]);

    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /governance_operations_total\{action="deploy",result="ok"\} 1/);
    assert.match(metrics, /governance_operations_total\{action="deploy",result="conflict"\} 1/);
    assert.match(metrics, /governance_operations_total\{action="rollback",result="ok"\} 1/);

    const history = (await t.app.inject({ url: `/governance/changes/${c.id}`, headers: { 'x-api-key': keys.approver! } })).json();
    assert.equal(history.approvals.length, 2);
    assert.equal(history.rollback_reason, 'false positives on the marketing site');
  });

  it("a second key of the author's (same owner) cannot approve the author's change either", async () => {
    const author = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['governance:write', 'governance:approve', 'keys:admin'], owner: 'carol' });
    const minted = await t.app.inject({ method: 'POST', url: '/keys', headers: { 'x-api-key': author.key }, payload: { scopes: ['governance:approve'] } });
    assert.equal(minted.json().owner, 'carol', "keys inherit their creator's owner");
    const disguised = await t.app.inject({
      method: 'POST',
      url: '/keys',
      headers: { 'x-api-key': author.key },
      payload: { scopes: ['governance:approve'], owner: 'dave' },
    });
    assert.equal(disguised.statusCode, 403, "a key belongs to its minter's identity");
    assert.equal(disguised.json().reason, 'owner_not_vouched');
    const doctrine = { ...structuredClone((await t.governance.active.get(t.tenantId, 'doctrine')).content.source), version: 'gov-owner-1', mode: 'guarded' };
    const c = (await post('/governance/changes', author.key, { kind: 'doctrine', content: doctrine, justification: 'tighten while investigating' })).json();
    const self = await post(`/governance/changes/${c.id}/approve`, minted.json().key);
    assert.equal(self.statusCode, 403);
    assert.equal(self.json().reason, 'self_approval');
    assert.equal((await post(`/governance/changes/${c.id}/approve`, keys.approver!)).statusCode, 200);
  });

  it('rejected and expired changes cannot be approved or deployed (409)', async () => {
    const rejected = (await propose(blockingRuleset('gov-rej-1'))).json();
    assert.equal((await post(`/governance/changes/${rejected.id}/reject`, keys.admin1!, { reason: 'blocks too broadly' })).statusCode, 200);
    const late = await post(`/governance/changes/${rejected.id}/approve`, keys.admin2!);
    assert.equal(late.statusCode, 409);
    assert.equal(late.json().change_status, 'rejected');
    assert.equal((await post(`/governance/changes/${rejected.id}/deploy`, keys.author!)).statusCode, 409);

    const stale = (await propose(blockingRuleset('gov-exp-1'))).json();
    await t.platform.db.withTenant(t.tenantId, (tx) =>
      tx
        .updateTable('governance_changes')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('id', '=', stale.id)
        .execute(),
    );
    const expired = await post(`/governance/changes/${stale.id}/approve`, keys.admin1!);
    assert.equal(expired.statusCode, 409);
    assert.equal(expired.json().change_status, 'expired');
    assert.equal((await t.app.inject({ url: `/governance/changes/${stale.id}`, headers: { 'x-api-key': keys.author! } })).json().status, 'expired');
  });

  it('tenant-bound: another tenant sees none of these changes', async () => {
    await t.auth.store.createTenant('gov-other');
    const other = await t.auth.store.createKey({ tenantId: 'gov-other', scopes: ['admin'] });
    const mine = (await propose(blockingRuleset('gov-tenant-1'))).json();
    assert.equal((await t.app.inject({ url: `/governance/changes/${mine.id}`, headers: { 'x-api-key': other.key } })).statusCode, 404);
    assert.equal((await post(`/governance/changes/${mine.id}/approve`, other.key)).statusCode, 404);
    assert.deepEqual((await t.app.inject({ url: '/governance/changes', headers: { 'x-api-key': other.key } })).json().changes, []);
  });
});

describe('governance deploys reach every node', () => {
  it('a deploy on one server process is picked up by another through the bus', async () => {
    const db = await createThrowawayDatabase();
    const nats = await startThrowawayNats();
    const env = { FG_DB_URL: db.url, FG_NATS_URL: nats.url };
    const a = await startTestApp({ db: 'postgres', env });
    const b = await startTestApp({ db: 'postgres', env });
    try {
      assert.equal((await b.governance.active.get(a.tenantId, 'doctrine')).version, 'default-2025.1');
      const author = await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['governance:write'] });
      const approver = await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['governance:approve'] });
      const doctrine = { ...structuredClone((await a.governance.active.get(a.tenantId, 'doctrine')).content.source), version: 'tight-1', mode: 'guarded' };
      const c = (
        await a.app.inject({
          method: 'POST',
          url: '/governance/changes',
          headers: { 'x-api-key': author.key },
          payload: { kind: 'doctrine', content: doctrine, justification: 'tighten during incident' },
        })
      ).json();
      assert.equal(c.risk, 'medium', c.risk_reasons);
      assert.equal(
        (await a.app.inject({ method: 'POST', url: `/governance/changes/${c.id}/approve`, headers: { 'x-api-key': approver.key } })).statusCode,
        200,
      );
      assert.equal((await a.app.inject({ method: 'POST', url: `/governance/changes/${c.id}/deploy`, headers: { 'x-api-key': author.key } })).statusCode, 200);
      const deadline = Date.now() + 5000;
      let seen = '';
      while (Date.now() < deadline && (seen = (await b.governance.active.get(a.tenantId, 'doctrine')).version) !== 'tight-1')
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(seen, 'tight-1');
    } finally {
      await a.platform.close();
      await b.platform.close();
      await nats.stop();
      await db.drop();
    }
  });
});
