import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assessRisk } from '../../../src/core/governance/risk.js';
import { DEFAULT_RATE_LIMIT_POLICY, parseRateLimitPolicy } from '../../../src/core/ratelimit/policy.js';

describe('risk assessment with user-chosen names', () => {
  it('a new rate-limit class named like an Object.prototype member is a new class (high risk), not a crash', () => {
    const budget = { per_key: { points: 10, duration_s: 1 }, per_tenant: { points: 10, duration_s: 1 } };
    // `constructor` matches the class-name pattern ^[a-z][a-z0-9_]*$; a plain lookup found Object itself.
    const proposed = parseRateLimitPolicy({
      ...DEFAULT_RATE_LIMIT_POLICY,
      version: 'p2',
      classes: { ...DEFAULT_RATE_LIMIT_POLICY.classes, constructor: budget },
    });
    const risk = assessRisk('ratelimit', DEFAULT_RATE_LIMIT_POLICY, proposed);
    assert.equal(risk.risk, 'high');
    assert.deepEqual(risk.reasons, ['rate limits of class constructor loosened or new']);
  });
});
