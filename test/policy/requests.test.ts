import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { PolicyEngine } from '../../src/policy/engine.js';
import {
  deployAuthorizationRequest,
  spawnAuthorizationRequest,
  spawnRefusalKind,
  type DeployPolicyInput,
  type SpawnPolicyInput,
} from '../../src/policy/requests.js';

const now = new Date('2026-03-01T12:00:00Z');
const spawnInput = (over: Partial<SpawnPolicyInput> = {}): SpawnPolicyInput => ({
  subject: 'alice',
  template: { id: 'ccna-ospf', track: 'ccna', tier: 'pro' },
  entitlement: { track: 'ccna', tier: 'enterprise', credits: 3, expiresAt: new Date(now.getTime() + 3600_000), subject: 'alice' },
  now,
  usage: { activeLabsSubject: 0, activeLabsTenant: 0, spawnsToday: 0 },
  limits: { maxConcurrentPerSubject: 1, maxConcurrentPerTenant: 5, maxSpawnsPerDay: 3 },
  ...over,
});

const deployInput = (change: Partial<DeployPolicyInput['change']> = {}): DeployPolicyInput => ({
  operator: 'ops-2',
  change: { id: 'chg_x', tenant: 'acme', kind: 'doctrine', risk: 'high', origin: 'human', approvals: 1, requiredApprovals: 1, ...change },
});

describe('typed request builders against the repository policies', () => {
  let engine: PolicyEngine;
  before(async () => {
    engine = await PolicyEngine.load();
  });

  it('spawn: a valid entitlement is allowed by the track permit', () => {
    const d = engine.authorize(spawnAuthorizationRequest(spawnInput()));
    assert.deepEqual({ decision: d.decision, reasons: d.reasons, errors: d.errors }, { decision: 'allow', reasons: ['training.ccna'], errors: [] });
    assert.equal(spawnRefusalKind(d), null);
  });

  it('spawn: quota refusals are classified as quota, training refusals as policy', () => {
    const quota = engine.authorize(spawnAuthorizationRequest(spawnInput({ usage: { activeLabsSubject: 1, activeLabsTenant: 0, spawnsToday: 0 } })));
    assert.deepEqual(quota.reasons, ['quota.subject_concurrent']);
    assert.equal(spawnRefusalKind(quota), 'quota');

    const { entitlement: _omit, ...withoutEntitlement } = spawnInput();
    const none = engine.authorize(spawnAuthorizationRequest(withoutEntitlement));
    assert.deepEqual(none.reasons, ['training.no_entitlement']);
    assert.equal(spawnRefusalKind(none), 'policy');

    const expired = engine.authorize(
      spawnAuthorizationRequest(spawnInput({ entitlement: { track: 'ccna', tier: 'pro', credits: 1, expiresAt: now, subject: 'alice' } })),
    );
    assert.deepEqual(expired.reasons, ['training.entitlement_expired']);

    const both = engine.authorize(
      spawnAuthorizationRequest(spawnInput({ entitlement: undefined, usage: { activeLabsSubject: 0, activeLabsTenant: 0, spawnsToday: 3 } })),
    );
    assert.equal(spawnRefusalKind(both), 'policy', 'a training refusal outranks a quota one');
  });

  it('deploy: high risk needs a canary within limits', () => {
    const missing = engine.authorize(deployAuthorizationRequest(deployInput()));
    assert.deepEqual(missing.reasons, ['governance.canary_missing']);
    const ok = engine.authorize(
      deployAuthorizationRequest(deployInput({ canary: { passed: true, eventsReplayed: 200, decisionsChanged: 10, newlyBlockedEntities: 0 } })),
    );
    assert.deepEqual({ decision: ok.decision, reasons: ok.reasons, errors: ok.errors }, { decision: 'allow', reasons: ['governance.approved'], errors: [] });
    const tooMany = engine.authorize(
      deployAuthorizationRequest(deployInput({ canary: { passed: true, eventsReplayed: 200, decisionsChanged: 11, newlyBlockedEntities: 0 } })),
    );
    assert.deepEqual(tooMany.reasons, ['governance.canary_changed_ratio']);
  });

  it('deploy: a global change (no tenant) is decided the same way', () => {
    const d = engine.authorize(deployAuthorizationRequest(deployInput({ tenant: undefined, risk: 'low' })));
    assert.equal(d.decision, 'allow');
  });
});
