import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CLI_OPERATOR } from '../../../src/core/auth/store.js';
import type { Scope } from '../../../src/platform/auth/scopes.js';
import { generateKey } from '../../../src/core/auth/key-format.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { blockingRuleset, recent } from './helpers.js';

/**
 * The two-person rule against one admin acting alone (issue 20, point 3): identities are not
 * something a key holder can invent, and an approval counts only from someone other than the
 * author and other than whoever minted the approving key.
 */
describe('two-person rule: one admin cannot approve their own change', () => {
  let t: TestApp;
  let rootId: string;
  before(async () => {
    t = await startTestApp({ captureLogs: true, roleOptions: { canaryEvents: { recentEvents: async (_tenant, limit) => recent.slice(0, limit) } } });
    rootId = (await t.auth.store.listKeys(t.tenantId)).find((k) => k.owner === 'root')!.id;
  });
  after(async () => t?.close());

  const post = (url: string, key: string, payload: object = {}) => t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, payload });
  const propose = async (version: string, key: string) => {
    const res = await post('/governance/changes', key, { kind: 'ruleset', content: blockingRuleset(version), justification: 'block WordPress probes' });
    assert.equal(res.statusCode, 201, res.body);
    return res.json<{ id: string; risk: string }>();
  };
  /** A person the operator enrols on the command line (`frostgate keys create --owner`). */
  const enrol = async (owner: string, scopes: Scope[] = ['admin']) =>
    (await t.auth.store.createKey({ tenantId: t.tenantId, scopes, owner, name: owner, minter: CLI_OPERATOR })).key;
  /** A key row as releases before this one wrote it: minted by `createdBy` for an owner it named freely. */
  const legacyKey = async (owner: string, createdBy: string) => {
    const k = generateKey();
    await t.platform.db.withTenant(t.tenantId, (tx) =>
      tx
        .insertInto('api_keys')
        .values({
          id: k.id,
          tenant_id: t.tenantId,
          digest: k.digest,
          name: owner,
          scopes: ['admin'],
          expires_at: null,
          revoked_at: null,
          last_used_at: null,
          created_by: createdBy,
          owner,
        })
        .execute(),
    );
    return k;
  };
  const auditFor = async (target: string) =>
    (await t.ledger.ledger.entries(t.tenantId, 'audit', 0, 100_000))
      .map((e) => e.record as { action: string; actor: string; target?: string; details: Record<string, unknown> })
      .filter((r) => r.target === target);
  const securityLines = (action: string) => t.logs!.lines.filter((l) => l.logger === 'frostgate.security' && l.action === action);

  it("the issue's path: keys minted for invented owners are refused, the admin's own new keys cannot approve, the deploy is refused", async () => {
    const change = await propose('two-ghost-1', t.adminKey);
    assert.equal(change.risk, 'high');
    const keysBefore = (await t.auth.store.listKeys(t.tenantId)).length;

    const ghost = await post('/keys', t.adminKey, { scopes: ['admin'], owner: 'ghost-1' });
    assert.equal(ghost.statusCode, 403, ghost.body);
    assert.equal(ghost.json().code, 'forbidden');
    assert.equal(ghost.json().reason, 'owner_not_vouched');
    assert.match(ghost.json().detail, /belongs to its identity root, not to ghost-1/);
    assert.equal((await t.auth.store.listKeys(t.tenantId)).length, keysBefore, 'no key stored');
    const refusedMint = securityLines('create_refused').at(-1)!;
    assert.equal(refusedMint.owner, 'ghost-1');
    assert.equal(refusedMint.request_id, ghost.json().request_id);
    const audit = (await t.ledger.ledger.entries(t.tenantId, 'audit', 0, 100_000)).map(
      (e) => e.record as { action: string; actor: string; details: Record<string, unknown> },
    );
    assert.ok(
      audit.some((r) => r.action === 'key.create_refused' && r.actor === rootId && r.details.owner === 'ghost-1' && r.details.reason === 'owner_not_vouched'),
      'the refused mint is audited',
    );

    // Without a named owner the new keys belong to root, and say who minted them.
    const minted = [];
    for (let i = 0; i < 2; i++) {
      const res = await post('/keys', t.adminKey, { scopes: ['admin'], name: `second-${i}` });
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual([res.json().owner, res.json().created_by, res.json().created_by_identity], ['root', rootId, 'root']);
      minted.push(res.json().key as string);
    }
    for (const key of minted) {
      const res = await post(`/governance/changes/${change.id}/approve`, key);
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().code, 'two_person_rule');
      assert.equal(res.json().reason, 'self_approval');
    }
    assert.equal(
      (await post(`/governance/changes/${change.id}/canary`, t.adminKey, { limit: 100 })).statusCode,
      200,
      'a canary has no side effects and stays allowed',
    );
    const deploy = await post(`/governance/changes/${change.id}/deploy`, t.adminKey);
    assert.equal(deploy.statusCode, 409, deploy.body);
    assert.match(deploy.json().detail, /deploy gate refused/);
    assert.equal((await t.governance.active.get(t.tenantId, 'ruleset')).version, 'default-2025.1');

    const refusals = (await auditFor(change.id)).filter((r) => r.action === 'governance.approve_refused');
    assert.equal(refusals.length, 2, 'each refused approval is in the audit ledger');
    for (const r of refusals) assert.deepEqual([r.details.code, r.details.reason, r.details.identity], ['two_person_rule', 'self_approval', 'root']);
    assert.equal(securityLines('approve_refused').filter((l) => l.change_id === change.id).length, 2);
  });

  it('keys whose invented owners predate this release cannot approve for whoever minted them, directly or through a chain', async () => {
    const g1 = await legacyKey('ghost-1', rootId);
    const g2 = await legacyKey('ghost-2', g1.id);
    const change = await propose('two-ghost-2', t.adminKey);
    for (const g of [g1, g2]) {
      const res = await post(`/governance/changes/${change.id}/approve`, g.key);
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().code, 'two_person_rule');
      assert.equal(res.json().reason, 'minted_by_author');
    }
    const audited = (await auditFor(change.id)).filter((r) => r.action === 'governance.approve_refused');
    assert.deepEqual(
      audited.map((r) => [r.actor, r.details.reason, r.details.identity]),
      [
        [g1.id, 'minted_by_author', 'ghost-1'],
        [g2.id, 'minted_by_author', 'ghost-2'],
      ],
    );
    assert.equal(securityLines('approve_refused').filter((l) => l.change_id === change.id && l.reason === 'minted_by_author').length, 2);
    // The other way round: a ghost's change cannot be approved by the key that minted it, nor by
    // another key that the same person minted.
    const byGhost = await propose('two-ghost-3', g2.key);
    const g3 = await legacyKey('ghost-3', rootId);
    assert.equal((await post(`/governance/changes/${byGhost.id}/approve`, t.adminKey)).json().reason, 'author_minted_by_approver');
    assert.equal((await post(`/governance/changes/${byGhost.id}/approve`, g1.key)).json().reason, 'author_minted_by_approver');
    assert.equal((await post(`/governance/changes/${byGhost.id}/approve`, g3.key)).json().reason, 'common_minter');

    // Nor can one person count twice on someone else's change through a ghost.
    const bob = await enrol('bob');
    const carol = await enrol('carol');
    const bobs = await propose('two-ghost-4', bob);
    assert.equal((await post(`/governance/changes/${bobs.id}/approve`, t.adminKey)).statusCode, 200);
    const twice = await post(`/governance/changes/${bobs.id}/approve`, g1.key);
    assert.equal(twice.statusCode, 403, twice.body);
    assert.equal(twice.json().reason, 'same_person_approved');
    const second = await post(`/governance/changes/${bobs.id}/approve`, carol);
    assert.equal(second.statusCode, 200, second.body);
    assert.equal(second.json().status, 'approved');
  });

  it('two people, two identities: the operator enrols the second, whose approval counts, and the change deploys', async () => {
    const dana = await enrol('dana');
    const erin = await enrol('erin');
    const change = await propose('two-people-1', t.adminKey);
    assert.equal((await post(`/governance/changes/${change.id}/approve`, dana)).statusCode, 200);
    // Dana's own minted key acts as dana: it cannot count as a second approval.
    const danas = await post('/keys', dana, { scopes: ['admin'] });
    assert.equal(danas.json().owner, 'dana');
    const again = await post(`/governance/changes/${change.id}/approve`, danas.json().key);
    assert.equal(again.statusCode, 409, again.body);
    const approved = await post(`/governance/changes/${change.id}/approve`, erin);
    assert.equal(approved.statusCode, 200, approved.body);
    assert.equal(approved.json().status, 'approved');
    assert.deepEqual(
      approved.json().approvals.map((a: { subject: string }) => a.subject),
      ['dana', 'erin'],
    );
    assert.equal((await post(`/governance/changes/${change.id}/canary`, t.adminKey, { limit: 100 })).statusCode, 200);
    const deployed = await post(`/governance/changes/${change.id}/deploy`, t.adminKey);
    assert.equal(deployed.statusCode, 200, deployed.body);
    assert.equal((await t.governance.active.get(t.tenantId, 'ruleset')).version, 'two-people-1');
    assert.equal((await post(`/governance/changes/${change.id}/rollback`, t.adminKey, { reason: 'test over, restore the default' })).statusCode, 200);
  });

  it('an author with keys:admin cannot approve through a key they minted, nor mint one for somebody else', async () => {
    const frank = await enrol('frank', ['governance:write', 'governance:approve', 'keys:admin']);
    const approverKey = await post('/keys', frank, { scopes: ['governance:approve'] });
    assert.equal(approverKey.json().owner, 'frank');
    assert.equal((await post('/keys', frank, { scopes: ['governance:approve'], owner: 'frank' })).statusCode, 201, 'naming oneself is allowed');
    assert.equal((await post('/keys', frank, { scopes: ['governance:approve'], owner: 'gina' })).json().reason, 'owner_not_vouched');
    const doctrine = { ...structuredClone((await t.governance.active.get(t.tenantId, 'doctrine')).content.source), version: 'two-frank-1', mode: 'guarded' };
    const change = (await post('/governance/changes', frank, { kind: 'doctrine', content: doctrine, justification: 'tighten while investigating' })).json();
    const self = await post(`/governance/changes/${change.id}/approve`, approverKey.json().key);
    assert.equal(self.statusCode, 403);
    assert.equal(self.json().reason, 'self_approval');
  });
});

describe('governance refusals are audited like successes (issue 20, point 13)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ captureLogs: true });
  });
  after(async () => t?.close());

  const post = (url: string, key: string, payload: object = {}) => t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, payload });
  const mk = async (scopes: Scope[], owner: string) => (await t.auth.store.createKey({ tenantId: t.tenantId, scopes, owner, minter: CLI_OPERATOR })).key;

  it(
    'self-approval, a missing scope (in the service and at the gate), a colleague ' +
      'withdrawing: each has its audit entry, committed although the request failed',
    async () => {
      const author = await mk(['governance:write', 'governance:approve'], 'hank');
      const approver = await mk(['governance:approve'], 'ivy');
      const reader = await mk(['decisions:read'], 'jo');
      const colleague = await mk(['governance:write'], 'lee');
      const change = (
        await post('/governance/changes', author, { kind: 'ruleset', content: blockingRuleset('audit-refusals-1'), justification: 'block WordPress probes' })
      ).json();
      const attempts = [
        { res: await post(`/governance/changes/${change.id}/approve`, author), action: 'governance.approve_refused', code: 'two_person_rule' },
        { res: await post(`/governance/changes/${change.id}/approve`, approver), action: 'governance.approve_refused', code: 'missing_scope' },
        { res: await post(`/governance/changes/${change.id}/approve`, reader), action: 'governance.approve_refused', code: 'missing_scope' },
        {
          res: await post(`/governance/changes/${change.id}/reject`, approver, { reason: 'looks too broad' }),
          action: 'governance.reject_refused',
          code: 'missing_scope',
        },
        { res: await post(`/governance/changes/${change.id}/withdraw`, approver), action: 'governance.withdraw_refused', code: 'missing_scope' },
        { res: await post(`/governance/changes/${change.id}/withdraw`, colleague), action: 'governance.withdraw_refused', code: 'forbidden' },
        { res: await post(`/governance/changes/${change.id}/deploy`, reader), action: 'governance.deploy_refused', code: 'missing_scope' },
      ];
      for (const a of attempts) assert.equal(a.res.statusCode, 403, a.res.body);

      const entries = (await t.ledger.ledger.entries(t.tenantId, 'audit', 0, 100_000)).map(
        (e) => e.record as { action: string; target?: string; details: Record<string, unknown> },
      );
      const refused = entries.filter((r) => r.target === change.id && r.action.endsWith('_refused'));
      assert.deepEqual(
        refused.map((r) => [r.action, r.details.code]),
        attempts.map((a) => [a.action, a.code]),
      );
      assert.deepEqual(
        refused.map((r) => r.details.identity),
        ['hank', 'ivy', 'jo', 'ivy', 'ivy', 'lee', 'jo'],
      );
      // Each is in the security log with its request id too.
      for (const a of attempts) {
        const id = a.res.json().request_id;
        assert.ok(
          t.logs!.lines.some((l) => l.logger === 'frostgate.security' && l.request_id === id && String(l.action ?? l.reason).match(/refused|missing_scope/)),
          `${a.action}: no security line for ${id}`,
        );
      }
      // The ledger's own proof covers them: they are entries like any other.
      const verify = await t.app.inject({ url: '/ledger/checkpoint?log=audit&fresh=true', headers: { 'x-api-key': t.adminKey } });
      assert.equal(verify.statusCode, 200, verify.body);
      // And the change itself is untouched.
      const now = (await t.app.inject({ url: `/governance/changes/${change.id}`, headers: { 'x-api-key': author } })).json();
      assert.deepEqual([now.status, now.approvals], ['proposed', []]);
    },
  );

  it("a refusal for a change of another tenant names no target in the refusing tenant's ledger", async () => {
    await t.auth.store.createTenant('refusal-other');
    const other = (await t.auth.store.createKey({ tenantId: 'refusal-other', scopes: ['decisions:read'] })).key;
    const author = await mk(['governance:write'], 'kim');
    const change = (
      await post('/governance/changes', author, { kind: 'ruleset', content: blockingRuleset('audit-refusals-2'), justification: 'block WordPress probes' })
    ).json();
    assert.equal((await post(`/governance/changes/${change.id}/approve`, other)).statusCode, 403);
    const theirs = (await t.ledger.ledger.entries('refusal-other', 'audit', 0, 1000)).map((e) => e.record as { action: string; target?: string });
    const refusal = theirs.find((r) => r.action === 'governance.approve_refused');
    assert.ok(refusal, "audited in the refusing key's tenant");
    assert.equal(refusal.target, undefined);
    assert.ok(!JSON.stringify(theirs).includes(change.id));
  });
});
