import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_RATE_LIMIT_POLICY, type RateLimitPolicy } from '../../../src/core/ratelimit/policy.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

/**
 * Issue 20 point 10: bouncer routes had the read class (1,000 requests a second per key, 5,000 per
 * tenant, shared with dashboards). They have classes of their own, sized for a fleet of 1,000
 * bouncers (docs/bouncers.md): `bouncer` for lookups, `bouncer_stream` for stream pulls.
 */
const roomy = { per_key: { points: 1000, duration_s: 60 }, per_tenant: { points: 5000, duration_s: 60 } };
const policy = (classes: RateLimitPolicy['classes']): RateLimitPolicy => ({
  version: `bouncer-${randomBytes(4).toString('hex')}`,
  classes,
  invalid_keys: { points: 1000, duration_s: 60, block_s: 60 },
});

describe('the bouncer rate-limit classes', () => {
  let t: TestApp;
  let bouncer: string;
  before(async () => {
    t = await startTestApp();
    bouncer = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['bouncer:read', 'decisions:read'] })).key;
  });
  after(async () => {
    t.limiter.apply(DEFAULT_RATE_LIMIT_POLICY);
    await t?.close();
  });
  const get = (url: string, key = bouncer) => t.app.inject({ url, headers: { 'x-api-key': key } });

  it('by default one bouncer key may look up 1,500 addresses at once without a 429 (the read class refused past 1,000 a second)', async () => {
    t.limiter.apply(DEFAULT_RATE_LIMIT_POLICY);
    const key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['bouncer:read'] })).key;
    assert.equal((await get('/v1/decisions?ip=100.64.0.1', key)).statusCode, 200); // the key looked up once, the block set loaded
    const answers = await Promise.all(Array.from({ length: 1500 }, (_, i) => get(`/v1/decisions?ip=100.64.${i >> 8}.${i & 255}`, key)));
    const refused = answers.filter((r) => r.statusCode !== 200);
    assert.equal(refused.length, 0, refused[0]?.body);
  });

  it('lookups and stream pulls spend budgets of their own, apart from each other and from the read class', async () => {
    const tight = { per_key: { points: 2, duration_s: 60 }, per_tenant: { points: 1000, duration_s: 60 } };
    t.limiter.apply(policy({ read: roomy, write: roomy, admin: roomy, bouncer: tight, bouncer_stream: { ...tight, per_key: { points: 1, duration_s: 60 } } }));
    assert.deepEqual([(await get('/v1/decisions?ip=100.64.9.1')).statusCode, (await get('/v1/decisions?ip=100.64.9.2')).statusCode], [200, 200]);
    const limited = await get('/v1/decisions?ip=100.64.9.3');
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().message, limited.json().detail, 'a 429 on a bouncer route is in the shape CrowdSec reads too');
    assert.equal((await get('/v1/decisions/stream?startup=true')).statusCode, 200, 'the stream has its own budget');
    assert.equal((await get('/v1/decisions/stream')).statusCode, 429);
    assert.equal((await get('/decisions')).statusCode, 200, "the key's read budget is untouched");
  });

  it('a policy deployed before these classes existed limits bouncer routes with its read class', async () => {
    t.limiter.apply(policy({ read: { per_key: { points: 1, duration_s: 60 }, per_tenant: { points: 1000, duration_s: 60 } }, write: roomy, admin: roomy }));
    assert.equal((await get('/v1/decisions?ip=100.64.9.1')).statusCode, 200);
    assert.equal((await get('/v1/decisions/stream?startup=true')).statusCode, 429);
  });

  it('the default sizes fit the fleet docs/bouncers.md sizes them for', () => {
    const { bouncer: lookups, bouncer_stream: stream } = DEFAULT_RATE_LIMIT_POLICY.classes;
    assert.ok(lookups && stream);
    const perS = (b: { points: number; duration_s: number }) => b.points / b.duration_s;
    const fleet = 1000;
    // Each bouncer polls the stream every 10 s (100 pulls/s); all of them restart at once, a startup and a poll each, within one window.
    assert.ok(perS(stream.per_tenant) >= 2 * (fleet / 10));
    assert.ok(stream.per_tenant.points >= 2 * fleet);
    // A bouncer may poll every second, with a retry, and start up again within the window.
    assert.ok(stream.per_key.points >= 2 * stream.per_key.duration_s + 1);
    // Lookups in live mode: 20 a second from each bouncer of the fleet, 2,000 from a busy one.
    assert.ok(perS(lookups.per_tenant) >= 20 * fleet);
    assert.ok(perS(lookups.per_key) >= 2000);
  });
});
