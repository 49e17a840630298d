import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { freePort, startThrowawayNats, startThrowawayRedis } from '../helpers/servers.js';

describe('health probes', () => {
  const apps: TestApp[] = [];
  after(async () => {
    for (const a of apps) await a.close();
  });

  it('live and ready are public; detailed needs a key', async () => {
    const t = await startTestApp();
    apps.push(t);
    assert.equal((await t.app.inject({ url: '/health/live' })).statusCode, 200);
    const ready = await t.app.inject({ url: '/health/ready' });
    assert.equal(ready.statusCode, 200);
    // Role all: the platform's dependencies, the policy engine and the Forge parts it runs.
    assert.deepEqual(Object.keys(ready.json().checks).sort(), ['bus', 'db', 'ingest_backlog', 'labs', 'policy', 'scoreboard', 'storage', 'templates']);
    assert.match(ready.json().checks.policy.version, /^pol_/);
    assert.equal((await t.app.inject({ url: '/health/detailed' })).statusCode, 401);
    const detailed = await t.app.inject({ url: '/health/detailed', headers: { 'x-api-key': t.adminKey } });
    assert.equal(detailed.statusCode, 200);
    const body = detailed.json();
    assert.equal(body.version, '0.1.0');
    assert.equal(typeof body.checks.db.latency_ms, 'number');
  });

  it('readiness checks Redis and NATS when configured, and answers 503 naming the one that is down', async () => {
    const redis = await startThrowawayRedis('a-test-only-redis-password');
    const nats = await startThrowawayNats();
    try {
      const t = await startTestApp({ db: 'postgres', env: { FG_REDIS_URL: redis.url, FG_NATS_URL: nats.url } });
      apps.push(t);
      // ioredis connects in the background: readiness reports it until it is up.
      let ready = await t.app.inject({ url: '/health/ready' });
      for (let i = 0; i < 100 && ready.statusCode !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        ready = await t.app.inject({ url: '/health/ready' });
      }
      assert.equal(ready.statusCode, 200, ready.body);
      assert.deepEqual(Object.keys(ready.json().checks).sort(), [
        'db',
        'ingest_backlog',
        'labs',
        'nats',
        'policy',
        'redis',
        'scoreboard',
        'storage',
        'templates',
      ]);

      await redis.stop();
      const redisDown = await t.app.inject({ url: '/health/ready' });
      assert.equal(redisDown.statusCode, 503);
      assert.match(String(redisDown.headers['content-type']), /problem\+json/);
      assert.deepEqual(redisDown.json().failed, ['redis']);
      assert.match(redisDown.json().detail, /redis failed/);

      await nats.stop();
      const bothDown = await t.app.inject({ url: '/health/ready' });
      assert.equal(bothDown.statusCode, 503);
      assert.deepEqual(bothDown.json().failed.sort(), ['nats', 'redis']);
    } finally {
      await redis.stop();
      await nats.stop();
    }
  });

  it('readiness fails on a database that is unreachable', async () => {
    const t = await startTestApp();
    apps.push(t);
    const port = await freePort();
    // Swap in a check against a closed port: the same code path a lost Postgres takes.
    const { openDatabase } = await import('../../src/platform/db/database.js');
    const dead = await openDatabase({ url: `postgres://postgres@127.0.0.1:${port}/none` });
    t.platform.health.register({ name: 'db', check: async () => ({ ping_ms: await dead.ping(1000) }) });
    const res = await t.app.inject({ url: '/health/ready' });
    assert.equal(res.statusCode, 503);
    assert.deepEqual(res.json().failed, ['db']);
    await dead.close();
  });
});
