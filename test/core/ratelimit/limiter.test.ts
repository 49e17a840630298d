import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { RateLimitPolicy } from '../../../src/core/ratelimit/policy.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { startThrowawayRedis } from '../../helpers/servers.js';

/** A tight policy so tests reach the limits in a few requests; a unique version isolates Redis keys. */
function tightPolicy(perKey = 3, perTenant = 100): RateLimitPolicy {
  return {
    version: `test-${randomBytes(4).toString('hex')}`,
    classes: {
      read: { per_key: { points: perKey, duration_s: 60 }, per_tenant: { points: perTenant, duration_s: 60 } },
      write: { per_key: { points: perKey, duration_s: 60 }, per_tenant: { points: perTenant, duration_s: 60 } },
    },
    invalid_keys: { points: 5, duration_s: 60, block_s: 60 },
  };
}

async function metric(t: TestApp, name: string): Promise<string> {
  return (await t.platform.metrics.registry.getSingleMetricAsString(name)).toString();
}

describe('rate limits', () => {
  const apps: TestApp[] = [];
  after(async () => {
    for (const a of apps) await a.close();
  });

  for (const backend of ['memory', 'redis'] as const) {
    it(`answers 429 problem+json with Retry-After and RateLimit-* headers (${backend})`, async () => {
      const t = await startTestApp({ env: backend === 'redis' ? { FG_REDIS_URL: 'redis://127.0.0.1:6379' } : {} });
      apps.push(t);
      if (t.platform.redis && t.platform.redis.status !== 'ready') {
        // ioredis connects in the background; until then limited routes fail closed (503).
        await new Promise<void>((resolve) => t.platform.redis!.once('ready', () => resolve()));
      }
      t.limiter.apply(tightPolicy(3));
      const h = { 'x-api-key': t.adminKey };
      const first = await t.app.inject({ url: '/keys', headers: h });
      assert.equal(first.statusCode, 200);
      assert.equal(first.headers['ratelimit-limit'], '3'); // the per-key budget refuses first
      for (let i = 0; i < 2; i++) assert.equal((await t.app.inject({ url: '/keys', headers: h })).statusCode, 200);
      const limited = await t.app.inject({ url: '/keys', headers: h });
      assert.equal(limited.statusCode, 429);
      assert.match(String(limited.headers['content-type']), /problem\+json/);
      assert.equal(limited.json().code, 'rate_limited');
      assert.match(limited.json().detail, /3 requests per 60 s for this key/);
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      assert.equal(limited.headers['ratelimit-limit'], '3');
      assert.equal(limited.headers['ratelimit-remaining'], '0');
      assert.ok(Number(limited.headers['ratelimit-reset']) >= 1);
      // Another key of the same tenant has its own budget.
      const other = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['keys:admin'] });
      assert.equal((await t.app.inject({ url: '/keys', headers: { 'x-api-key': other.key } })).statusCode, 200);
      assert.match(await metric(t, 'rate_limit_total'), /result="limited"\} 1/);
      // Public probes are never limited.
      for (let i = 0; i < 5; i++) assert.equal((await t.app.inject({ url: '/health/live' })).statusCode, 200);
    });
  }

  it('advertises the budget that will refuse first: the per-key one when it is lower, the tenant one when it is', async () => {
    const t = await startTestApp();
    apps.push(t);
    const budget = (res: { headers: Record<string, unknown> }) => ({
      limit: res.headers['ratelimit-limit'],
      remaining: res.headers['ratelimit-remaining'],
      policy: res.headers['ratelimit-policy'],
    });

    // Per key 5, per tenant 100: every answer counts down the key's 5, and the 429 comes at the 6th.
    t.limiter.apply(tightPolicy(5, 100));
    const h = { 'x-api-key': t.adminKey };
    const seen = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.app.inject({ url: '/keys', headers: h });
      assert.equal(res.statusCode, 200);
      seen.push(budget(res));
    }
    assert.deepEqual(
      seen.map((b) => [b.limit, b.remaining]),
      [
        ['5', '4'],
        ['5', '3'],
        ['5', '2'],
        ['5', '1'],
        ['5', '0'],
      ],
    );
    assert.equal(seen[0]!.policy, '5;w=60, 100;w=60', 'RateLimit-Policy lists both budgets, the binding one first');
    const refused = await t.app.inject({ url: '/keys', headers: h });
    assert.equal(refused.statusCode, 429);
    assert.deepEqual(budget(refused), { limit: '5', remaining: '0', policy: '5;w=60' });

    // Per key 100, per tenant 4: the tenant's budget is the one that refuses, across two keys.
    t.limiter.apply(tightPolicy(100, 4));
    const keys = await Promise.all([1, 2].map(() => t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['keys:admin'] })));
    const tenantSeen = [];
    for (let i = 0; i < 4; i++) {
      const res = await t.app.inject({ url: '/keys', headers: { 'x-api-key': keys[i % 2]!.key } });
      assert.equal(res.statusCode, 200);
      tenantSeen.push(budget(res));
    }
    assert.deepEqual(
      tenantSeen.map((b) => [b.limit, b.remaining]),
      [
        ['4', '3'],
        ['4', '2'],
        ['4', '1'],
        ['4', '0'],
      ],
    );
    assert.equal(tenantSeen[0]!.policy, '4;w=60, 100;w=60');
    const tenantRefused = await t.app.inject({ url: '/keys', headers: { 'x-api-key': keys[0]!.key } });
    assert.equal(tenantRefused.statusCode, 429);
    assert.match(tenantRefused.json().detail, /4 requests per 60 s for this tenant/);
    assert.deepEqual(budget(tenantRefused), { limit: '4', remaining: '0', policy: '4;w=60' });

    // Fewest points left wins, not the smaller limit: per key 10, per tenant 12.
    t.limiter.apply(tightPolicy(10, 12));
    const a = keys[0]!;
    const b = keys[1]!;
    let last = budget(await t.app.inject({ url: '/keys', headers: { 'x-api-key': a.key } }));
    for (let i = 1; i < 9; i++) last = budget(await t.app.inject({ url: '/keys', headers: { 'x-api-key': a.key } }));
    assert.deepEqual([last.limit, last.remaining], ['10', '1'], 'key a: 1 left of its 10, the tenant 3 of 12');
    const other = budget(await t.app.inject({ url: '/keys', headers: { 'x-api-key': b.key } }));
    assert.deepEqual([other.limit, other.remaining], ['12', '2'], 'key b: 9 left of its 10, the tenant 2 of 12');
  });

  it('limits per tenant across keys', async () => {
    const t = await startTestApp();
    apps.push(t);
    t.limiter.apply(tightPolicy(100, 4));
    const keys = await Promise.all([1, 2].map(() => t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['keys:admin'] })));
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await t.app.inject({ url: '/keys', headers: { 'x-api-key': keys[i % 2]!.key } })).statusCode);
    assert.deepEqual(codes, [200, 200, 200, 200, 429, 429]);
  });

  it('fails closed when Redis is down: 503, and FG_RL_FAIL_OPEN alone changes nothing', async () => {
    const redis = await startThrowawayRedis('rl-test-password-0123456789');
    try {
      const t = await startTestApp({ env: { FG_REDIS_URL: redis.url, FG_RL_FAIL_OPEN: 'true' } });
      apps.push(t);
      t.limiter.apply(tightPolicy(1000));
      let ok = await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } });
      for (let i = 0; i < 100 && ok.statusCode !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50)); // ioredis connects in the background
        ok = await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } });
      }
      assert.equal(ok.statusCode, 200);
      await redis.stop();
      const down = await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } });
      assert.equal(down.statusCode, 503);
      assert.equal(down.json().code, 'unavailable');
      assert.match(await metric(t, 'rate_limit_total'), /result="unavailable"\} 1/);
      // Recovery without restart.
      await redis.start();
      let back = down;
      for (let i = 0; i < 100 && back.statusCode !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        back = await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } });
      }
      assert.equal(back.statusCode, 200);
    } finally {
      await redis.stop();
    }
  });

  it('acknowledged fail-open lets requests through, logs CRITICAL and counts fail_open_triggered_total', async () => {
    const redis = await startThrowawayRedis('rl-test-password-0123456789');
    try {
      const t = await startTestApp({ env: { FG_REDIS_URL: redis.url, FG_RL_FAIL_OPEN: 'true', FG_RL_FAIL_OPEN_ACKNOWLEDGED: 'true' }, captureLogs: true });
      apps.push(t);
      await redis.stop();
      const res = await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } });
      assert.equal(res.statusCode, 200);
      assert.match(await metric(t, 'fail_open_triggered_total'), /component="ratelimit"\} 1/);
      const critical = t.logs!.lines.find((l) => l.level === 'fatal' && l.component === 'ratelimit');
      assert.ok(critical, 'a CRITICAL line was logged');
      assert.match(String(critical.msg), /CRITICAL/);
      assert.equal(critical.logger, 'frostgate.security');
      assert.ok(critical.request_id);
      // Each pass is in the audit ledger too, aggregated per tenant and minute.
      await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } });
      await t.ledger.failOpen.flush();
      const audit = await t.ledger.ledger.entries(t.tenantId, 'audit', 0, 100);
      const entries = audit.map((e) => e.record as { action: string; details: { passes: number } }).filter((r) => r.action === 'fail_open.ratelimit');
      assert.equal(
        entries.reduce((n, r) => n + r.details.passes, 0),
        2,
      );
    } finally {
      await redis.stop();
    }
  });

  it('a bypass key is not limited, and its use is in the audit ledger once per minute', async () => {
    const t = await startTestApp();
    apps.push(t);
    t.limiter.apply(tightPolicy(2));
    const bypass = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['keys:admin', 'ratelimit:bypass'] });
    for (let i = 0; i < 6; i++) assert.equal((await t.app.inject({ url: '/keys', headers: { 'x-api-key': bypass.key } })).statusCode, 200);
    const entries = await t.ledger.ledger.entries(t.tenantId, 'audit', 0, 100);
    const uses = entries.filter((e) => (e.record as { action?: string }).action === 'ratelimit.bypass');
    assert.equal(uses.length, 1, 'aggregated per key per minute');
    assert.equal((uses[0]!.record as { actor: string }).actor, bypass.id);
    assert.match(await metric(t, 'rate_limit_total'), /result="bypass"\} 6/);
  });
});

describe('governed rate-limit policy', () => {
  it('a policy a tenant deploys through governance sets its limits; other tenants keep theirs', async () => {
    const t = await startTestApp();
    try {
      const author = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['governance:write', 'keys:admin'] });
      const approver = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['governance:approve'] });
      const policy = { ...tightPolicy(1000, 1000), version: 'tenant-tight-1' };
      policy.classes.read = { per_key: { points: 2, duration_s: 60 }, per_tenant: { points: 1000, duration_s: 60 } };
      const post = (url: string, key: string, payload: object = {}) => t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, payload });
      const change = (
        await post('/governance/changes', author.key, { kind: 'ratelimit', content: policy, justification: 'tighten reads for this tenant' })
      ).json();
      assert.equal(change.risk, 'low', JSON.stringify(change.risk_reasons));
      assert.equal((await post(`/governance/changes/${change.id}/approve`, approver.key)).statusCode, 200);
      assert.equal((await post(`/governance/changes/${change.id}/deploy`, author.key)).statusCode, 200);
      const reader = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['keys:admin'] });
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await t.app.inject({ url: '/keys', headers: { 'x-api-key': reader.key } })).statusCode);
      assert.deepEqual(codes, [200, 200, 429]);
      // A later deploy (tighter still: low risk) replaces the tenant's limiters with its own.
      const tighter = {
        ...policy,
        version: 'tenant-tight-2',
        classes: { ...policy.classes, read: { per_key: { points: 1, duration_s: 60 }, per_tenant: { points: 1000, duration_s: 60 } } },
      };
      const second = (await post('/governance/changes', author.key, { kind: 'ratelimit', content: tighter, justification: 'tighten reads further' })).json();
      assert.equal((await post(`/governance/changes/${second.id}/approve`, approver.key)).statusCode, 200);
      assert.equal((await post(`/governance/changes/${second.id}/deploy`, author.key)).statusCode, 200);
      const reader2 = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['keys:admin'] });
      const codes2 = [];
      for (let i = 0; i < 2; i++) codes2.push((await t.app.inject({ url: '/keys', headers: { 'x-api-key': reader2.key } })).statusCode);
      assert.deepEqual(codes2, [200, 429]);
      await t.auth.store.createTenant('rl-other');
      const other = await t.auth.store.createKey({ tenantId: 'rl-other', scopes: ['keys:admin'] });
      for (let i = 0; i < 3; i++) assert.equal((await t.app.inject({ url: '/keys', headers: { 'x-api-key': other.key } })).statusCode, 200);
    } finally {
      await t.close();
    }
  });
});

describe('invalid-key brute force', () => {
  it('invalid keys from one source are refused after the budget, while a valid key from the same source still works', async () => {
    const t = await startTestApp();
    try {
      t.limiter.apply({ ...tightPolicy(1000, 1000), invalid_keys: { points: 4, duration_s: 60, block_s: 60 } });
      const bad = () => t.app.inject({ url: '/keys', headers: { 'x-api-key': `fg_aaaaaaaaaaaa_${randomBytes(32).toString('base64url')}` } });
      const codes = [];
      for (let i = 0; i < 6; i++) codes.push((await bad()).statusCode);
      assert.deepEqual(codes, [401, 401, 401, 401, 429, 429]);
      const refused = await bad();
      assert.match(refused.json().detail, /too many invalid API keys from this address/);
      assert.ok(Number(refused.headers['retry-after']) >= 1);
      assert.equal((await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } })).statusCode, 200, 'valid keys are not locked out');
      assert.match(await metric(t, 'rate_limit_total'), /result="invalid_key_blocked"\} [1-9]/);
    } finally {
      await t.close();
    }
  });
});
