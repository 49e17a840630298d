import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { RateLimitPolicy } from '../../../src/core/ratelimit/policy.js';
import { unknownKey } from '../../chaos/harness.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { startThrowawayRedis } from '../../helpers/servers.js';

/**
 * The parts of issue 7's rate-limit bullets that limiter.test.ts does not show: budgets per route
 * class, the slow-down before the invalid-key refusal and its scope (one source), an exact
 * rate_limit_total{result} through /metrics, and "every" fail-open pass being logged and counted.
 */

function policy(overrides: Partial<RateLimitPolicy['classes']>, invalid = { points: 1000, duration_s: 60, block_s: 60 }): RateLimitPolicy {
  const roomy = { per_key: { points: 1000, duration_s: 60 }, per_tenant: { points: 5000, duration_s: 60 } };
  return { version: `gaps-${randomBytes(4).toString('hex')}`, classes: { read: roomy, write: roomy, admin: roomy, ...overrides }, invalid_keys: invalid };
}

/** The value of one series of a counter, read from the public /metrics endpoint. */
async function counter(t: TestApp, name: string, label: string): Promise<number> {
  const text = (await t.app.inject({ url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${label}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const event = () => ({ source: 'sshd', event_type: 'auth.failure', occurred_at: new Date().toISOString(), payload: { src_ip: '100.64.0.1' } });
const badKey = () => unknownKey();

describe('rate limits per route class', () => {
  it('each class has its own budget: a spent read budget leaves writes and admin routes alone, and routes of one class share it', async () => {
    const t = await startTestApp();
    try {
      t.limiter.apply(
        policy({
          read: { per_key: { points: 2, duration_s: 60 }, per_tenant: { points: 1000, duration_s: 60 } },
          admin: { per_key: { points: 1, duration_s: 60 }, per_tenant: { points: 1000, duration_s: 60 } },
        }),
      );
      const key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['defend:write', 'decisions:read', 'governance:write'] })).key;
      const h = { 'x-api-key': key };
      const read = () => t.app.inject({ url: '/decisions', headers: h });
      assert.deepEqual([(await read()).statusCode, (await read()).statusCode], [200, 200]);
      const limited = await read();
      assert.equal(limited.statusCode, 429);
      assert.equal(limited.headers['ratelimit-limit'], '2');
      // Another read route: same class, same spent budget.
      assert.equal((await t.app.inject({ url: '/decisions/active', headers: h })).statusCode, 429);
      // The write class is untouched; its answer carries the write budget closest to exhaustion (the key's 1000, not the tenant's 5000).
      const write = await t.app.inject({ method: 'POST', url: '/defend', headers: h, payload: event() });
      assert.equal(write.statusCode, 200, write.body);
      assert.equal(write.headers['ratelimit-limit'], '1000');
      assert.equal(write.headers['ratelimit-remaining'], '999');
      // The admin class (governance) has its own budget of 1 per key.
      const propose = () =>
        t.app.inject({
          method: 'POST',
          url: '/governance/changes',
          headers: h,
          payload: { kind: 'ratelimit', content: {}, justification: 'class budget test' },
        });
      assert.notEqual((await propose()).statusCode, 429);
      const adminLimited = await propose();
      assert.equal(adminLimited.statusCode, 429);
      assert.equal(adminLimited.headers['ratelimit-limit'], '1');

      // rate_limit_total{result}: exactly what happened above, read where Prometheus reads it.
      assert.equal(await counter(t, 'rate_limit_total', 'result="allowed"'), 4);
      assert.equal(await counter(t, 'rate_limit_total', 'result="limited"'), 3);
    } finally {
      await t.close();
    }
  });
});

describe('invalid-key brute force: slowed, then refused, per source', () => {
  it('the guard asks for a growing delay past half the budget, then refuses', async () => {
    const t = await startTestApp();
    try {
      t.limiter.apply(policy({}, { points: 6, duration_s: 60, block_s: 60 }));
      const verdicts = [];
      for (let i = 0; i < 7; i++) verdicts.push(await t.limiter.recordInvalidKey('192.0.2.10'));
      assert.deepEqual(
        verdicts.map((v) => v.delayMs),
        [0, 0, 0, 100, 200, 300, 0],
      );
      assert.deepEqual(
        verdicts.map((v) => v.blocked),
        [false, false, false, false, false, false, true],
      );
      assert.ok(verdicts[6]!.retryAfterS >= 1);
    } finally {
      await t.close();
    }
  });

  it('over HTTP a slowed 401 is held back, a refused source gets 429, and another source and valid keys are unaffected', async () => {
    const t = await startTestApp();
    try {
      t.limiter.apply(policy({}, { points: 4, duration_s: 60, block_s: 60 }));
      const from = (remoteAddress: string, key: string) => t.app.inject({ url: '/keys', headers: { 'x-api-key': key }, remoteAddress });
      const attacker = '198.51.100.7';
      assert.deepEqual([(await from(attacker, badKey())).statusCode, (await from(attacker, badKey())).statusCode], [401, 401]);
      // Third and fourth failures are past half the budget: answered 401 only after the delay.
      const started = performance.now();
      const slowed = await from(attacker, badKey());
      const heldMs = performance.now() - started;
      assert.equal(slowed.statusCode, 401);
      assert.ok(heldMs >= 95, `the third invalid key was held back ${heldMs.toFixed(0)} ms, expected at least 100`);
      assert.equal((await from(attacker, badKey())).statusCode, 401);
      const refused = await from(attacker, badKey());
      assert.equal(refused.statusCode, 429);
      assert.equal(refused.json().code, 'rate_limited');
      // Scoped to the source: another address presenting a bad key is a plain 401.
      assert.equal((await from('198.51.100.8', badKey())).statusCode, 401);
      // And the attacker's address cannot lock a valid key out.
      assert.equal((await from(attacker, t.adminKey)).statusCode, 200);
      assert.equal(await counter(t, 'rate_limit_total', 'result="invalid_key_blocked"'), 1);
    } finally {
      await t.close();
    }
  });
});

describe('fail-open accounting', () => {
  it('every acknowledged fail-open pass logs CRITICAL and is counted, one for one', async () => {
    const redis = await startThrowawayRedis('gaps-redis-password-0123456789');
    let t: TestApp | undefined;
    try {
      t = await startTestApp({ env: { FG_REDIS_URL: redis.url, FG_RL_FAIL_OPEN: 'true', FG_RL_FAIL_OPEN_ACKNOWLEDGED: 'true' }, captureLogs: true });
      await redis.stop();
      for (let i = 0; i < 3; i++) assert.equal((await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } })).statusCode, 200);
      const critical = t.logs!.lines.filter((l) => l.level === 'fatal' && l.type === 'fail_open' && l.component === 'ratelimit');
      assert.equal(critical.length, 3);
      assert.equal(await counter(t, 'fail_open_triggered_total', 'component="ratelimit"'), 3);
      assert.equal(await counter(t, 'rate_limit_total', 'result="fail_open"'), 3);
    } finally {
      await t?.close();
      await redis.stop();
    }
  });

  it('FG_RL_FAIL_OPEN without the acknowledgement warns at startup and stays closed', async () => {
    const redis = await startThrowawayRedis('gaps-redis-password-0123456789');
    let t: TestApp | undefined;
    try {
      t = await startTestApp({ env: { FG_REDIS_URL: redis.url, FG_RL_FAIL_OPEN: 'true' }, captureLogs: true });
      const warning = t.logs!.lines.find((l) => l.level === 'warn' && l.type === 'config_warning' && l.component === 'ratelimit');
      assert.ok(warning, 'a startup warning names the rate limiter');
      assert.match(String(warning.msg), /has no effect/);
      await redis.stop();
      const res = await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } });
      assert.equal(res.statusCode, 503);
      assert.equal(await counter(t, 'fail_open_triggered_total', 'component="ratelimit"'), 0);
    } finally {
      await t?.close();
      await redis.stop();
    }
  });
});
