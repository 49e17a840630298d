import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { compileRuleset } from '../../../src/core/engine/ruleset.js';
import { evaluate, type Decision } from '../../../src/core/engine/evaluate.js';
import { MemoryWindowStore, RedisWindowStore, type WindowRecord, type WindowStore } from '../../../src/core/engine/windows.js';
import { NO_ENFORCEMENT } from '../../../src/core/engine/doctrine.js';
import { WindowStoreError } from '../../../src/core/engine/errors.js';
import type { SecurityEvent } from '../../../src/core/engine/event.js';
import { doctrine, event } from './helpers.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

let redis: Redis;
const stores: RedisWindowStore[] = [];

before(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: false });
});

after(async () => {
  for (const s of stores) await s.clear();
  await redis.quit();
});

/** A Redis store with a namespace of its own, deleted after the suite even if a test fails. */
function redisStore(): RedisWindowStore {
  const store = new RedisWindowStore({ redis, prefix: `fgtest:win:${randomUUID()}:` });
  stores.push(store);
  return store;
}

const backends: Array<[string, () => WindowStore]> = [
  ['memory', () => new MemoryWindowStore()],
  ['redis', redisStore],
];

const T0 = Date.parse('2025-03-01T12:00:00Z');
const op = (atS: number, member?: string, mode: 'count' | 'distinct' = 'count', key = 'k'): WindowRecord => ({
  key,
  atMs: T0 + atS * 1000,
  windowMs: 60_000,
  mode,
  member,
});

async function run(store: WindowStore, ops: WindowRecord[]): Promise<number[]> {
  const out: number[] = [];
  for (const o of ops) out.push(await store.record(o));
  return out;
}

for (const [name, make] of backends) {
  describe(`window store: ${name}`, () => {
    it('counts events inside the window and forgets them by event time', async () => {
      const counts = await run(make(), [op(0), op(10), op(20), op(59), op(60), op(61), op(125)]);
      // (t-60, t]: at 60 the event at 0 has left; at 61 the one at 0 and none else; at 125 only itself.
      assert.deepEqual(counts, [1, 2, 3, 4, 4, 5, 1]);
    });

    it('counts a re-evaluated event id once', async () => {
      const counts = await run(make(), [op(0, 'e:a'), op(1, 'e:b'), op(1, 'e:b'), op(2)]);
      assert.deepEqual(counts, [1, 2, 2, 3]);
    });

    it('counts distinct values, keeping the latest time of each', async () => {
      const counts = await run(make(), [
        op(0, 'v:alice', 'distinct'),
        op(1, 'v:bob', 'distinct'),
        op(2, 'v:alice', 'distinct'),
        op(50, 'v:carol', 'distinct'),
        op(61, 'v:dave', 'distinct'), // alice (2) and bob (1) still... bob at 1 <= 61-60: gone
        op(63, 'v:erin', 'distinct'), // alice at 2 gone
      ]);
      assert.deepEqual(counts, [1, 2, 2, 3, 3, 3]);
    });

    it('keeps counters apart by key and ignores out-of-order future members', async () => {
      const store = make();
      assert.deepEqual(await run(store, [op(30, undefined, 'count', 'a'), op(30, undefined, 'count', 'b'), op(10, undefined, 'count', 'a')]), [1, 1, 1]);
      assert.equal(await store.record(op(40, undefined, 'count', 'a')), 3);
    });
  });
}

describe('redis window store', () => {
  it('sets a TTL on its keys and deletes its namespace', async () => {
    const store = redisStore();
    await store.record(op(0));
    const keys = await redis.keys(`${store.prefix}*`);
    assert.equal(keys.length, 1);
    const ttl = await redis.pttl(keys[0]!);
    assert.ok(ttl > 0 && ttl <= 60_000 + 600_000, `ttl ${ttl}`);
    assert.equal(await store.clear(), 1);
    assert.equal((await redis.keys(`${store.prefix}*`)).length, 0);
  });

  it('fails closed with a typed error when Redis is unreachable', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    dead.on('error', () => {});
    try {
      const store = new RedisWindowStore({ redis: dead, prefix: `fgtest:dead:${randomUUID()}:` });
      await assert.rejects(store.record(op(0)), (err: unknown) => err instanceof WindowStoreError && err.code === 'window_store_unavailable');
    } finally {
      dead.disconnect();
    }
  });

  it('stays atomic under concurrent records from separate connections', async () => {
    const prefix = `fgtest:win:${randomUUID()}:`;
    const other = new Redis(REDIS_URL);
    try {
      const a = new RedisWindowStore({ redis, prefix });
      const b = new RedisWindowStore({ redis: other, prefix });
      stores.push(a);
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).record(op(1))));
      assert.deepEqual(
        [...results].sort((x, y) => x - y),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
    } finally {
      await other.quit();
    }
  });
});

describe('evaluate on memory and Redis', () => {
  const rules = compileRuleset({
    version: 'w1',
    thresholds: { low: 10, medium: 30, high: 60, critical: 90 },
    rules: [
      {
        id: 'fails',
        description: '3 auth failures per IP in 60 s',
        score: 60,
        when: { field: 'event_type', eq: 'auth.failure' },
        window: { key: ['payload.src_ip'], window_s: 60, threshold: 3 },
        mitigations: [{ action: 'block_ip', target: 'payload.src_ip', duration_s: 600 }],
      },
      {
        id: 'users',
        description: '3 distinct usernames per IP in 120 s',
        score: 40,
        when: { field: 'event_type', eq: 'auth.failure' },
        window: { key: ['payload.src_ip'], distinct: 'payload.username', window_s: 120, threshold: 3 },
      },
    ],
  });

  function stream(): SecurityEvent[] {
    const events: SecurityEvent[] = [];
    const ips = ['198.51.100.1', '198.51.100.2', '::ffff:198.51.100.1'];
    // A fast burst over several usernames, a slow trickle, then a burst on one username.
    for (let i = 0; i < 60; i++) {
      const at = i < 30 ? i * 2 : i < 45 ? 400 + (i - 30) * 70 : 2000 + (i - 45) * 3;
      const username = i < 45 ? `u${(i * 5) % 4}` : 'u0';
      events.push(event('auth.failure', { src_ip: ips[(i * 7) % 3], username }, at));
    }
    return events;
  }

  async function decide(store: WindowStore, tenantId: string): Promise<Decision[]> {
    const out: Decision[] = [];
    for (const e of stream()) out.push(await evaluate(e, { tenantId, ruleset: rules, doctrine: doctrine(), windows: store, enforcement: NO_ENFORCEMENT }));
    return out;
  }

  it('produces identical decisions from the same event stream', async () => {
    const fromMemory = await decide(new MemoryWindowStore(), 'tenant-a');
    const fromRedis = await decide(redisStore(), 'tenant-a');
    assert.deepEqual(fromRedis, fromMemory);
    // The stream does cross both thresholds and fall back below them.
    const levels = new Set(fromMemory.map((d) => d.threat_level));
    assert.ok(levels.has('none') && levels.has('high') && levels.has('critical'), [...levels].join(','));
  });

  it('keeps tenants apart', async () => {
    const store = redisStore();
    const ctx = (tenantId: string) => ({ tenantId, ruleset: rules, doctrine: doctrine(), windows: store, enforcement: NO_ENFORCEMENT });
    for (let i = 0; i < 3; i++) await evaluate(event('auth.failure', { src_ip: '198.51.100.9', username: 'x' }, i), ctx('tenant-a'));
    const other = await evaluate(event('auth.failure', { src_ip: '198.51.100.9', username: 'x' }, 3), ctx('tenant-b'));
    assert.deepEqual(other.rules_triggered, []);
  });
});
