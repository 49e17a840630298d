import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createAuthGate } from '../../../src/core/auth/gate.js';
import { FULL_RELOAD_MS, KeyIndex } from '../../../src/core/auth/key-index.js';
import { generateKey } from '../../../src/core/auth/key-format.js';
import { KEY_CACHE_TTL_MS, KeyResolver } from '../../../src/core/auth/key-resolver.js';
import type { KeyStore } from '../../../src/core/auth/store.js';
import { DEFAULT_RATE_LIMIT_POLICY } from '../../../src/core/ratelimit/policy.js';
import { InProcessBus } from '../../../src/platform/bus/bus.js';
import { buildServer } from '../../../src/platform/http/server.js';
import { startTestApp, testConfig, type TestApp } from '../../helpers/app.js';
import { authEvents, probePath, probeRoutes, startAuthNode, type AuthNode } from './helpers.js';

const PROBE = probePath('decisions:read');

/** Counts the real store's calls (the index refresh and the per-id record lookup) without changing them. */
function countCalls(store: KeyStore): { lookups: number; refreshes: number } {
  const counts = { lookups: 0, refreshes: 0 };
  const lookup = store.lookup.bind(store);
  const keyIndexSince = store.keyIndexSince.bind(store);
  store.lookup = (id) => (counts.lookups++, lookup(id));
  store.keyIndexSince = (since) => (counts.refreshes++, keyIndexSince(since));
  return counts;
}

/** A key row written straight into the database, as the CLI or another node would: this node's index has not seen it. */
async function insertElsewhere(node: { platform: AuthNode['platform'] }, tenant: string, createdAt?: Date) {
  const k = generateKey();
  await node.platform.db.withTenant(tenant, (tx) =>
    tx
      .insertInto('api_keys')
      .values({
        id: k.id,
        tenant_id: tenant,
        digest: k.digest,
        name: 'elsewhere',
        scopes: ['decisions:read'],
        expires_at: null,
        revoked_at: null,
        last_used_at: null,
        created_by: 'cli',
        owner: k.id,
        ...(createdAt ? { created_at: createdAt } : {}),
      })
      .execute(),
  );
  return k;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('unknown key ids and wrong secrets cost the same (issue 20, point 7)', () => {
  let node: AuthNode;
  let counts: { lookups: number; refreshes: number };
  let real: string;
  before(async () => {
    node = await startAuthNode();
    counts = countCalls(node.auth.store);
    real = (await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] })).key;
    assert.equal((await node.app.inject({ url: PROBE, headers: { 'x-api-key': real } })).statusCode, 200, 'the real key is known and its record cached');
  });
  after(async () => node?.close());

  const paths = {
    'unknown id': () => generateKey().key,
    'wrong secret for a real id': () => `${real.slice(0, 16)}${generateKey().key.slice(16)}`,
  };

  it('both take one index refresh and no record lookup, request after request', async (t) => {
    const times: Record<string, number[]> = { 'unknown id': [], 'wrong secret for a real id': [] };
    for (let round = 0; round < 60; round++) {
      for (const [name, make] of Object.entries(paths)) {
        const before = { ...counts };
        const t0 = process.hrtime.bigint();
        const res = await node.app.inject({ url: PROBE, headers: { 'x-api-key': make() } });
        times[name]!.push(Number(process.hrtime.bigint() - t0) / 1000);
        assert.equal(res.statusCode, 401);
        assert.deepEqual(
          { lookups: counts.lookups - before.lookups, refreshes: counts.refreshes - before.refreshes },
          { lookups: 0, refreshes: 1 },
          `${name}, round ${round}`,
        );
      }
    }
    // Figures for the reader; the assertion is the equal work above (timing on a shared machine is noise).
    t.diagnostic(
      `median µs per refused request: ${Object.entries(times)
        .map(([k, v]) => `${k} ${median(v).toFixed(0)}`)
        .join(', ')}`,
    );
    const reasons = authEvents(node.logs)
      .slice(-4)
      .map((l) => l.reason);
    assert.deepEqual(reasons, ['unknown', 'unknown', 'unknown', 'unknown'], 'the security log cannot tell them apart either');
  });

  it('a valid key whose record is cached costs the store nothing', async () => {
    const before = { ...counts };
    for (let i = 0; i < 20; i++) assert.equal((await node.app.inject({ url: PROBE, headers: { 'x-api-key': real } })).statusCode, 200);
    assert.deepEqual(counts, before);
  });

  it('concurrent invalid keys share refreshes: a flood costs the database one query at a time', async () => {
    const before = counts.refreshes;
    const results = await Promise.all(Array.from({ length: 200 }, () => node.app.inject({ url: PROBE, headers: { 'x-api-key': generateKey().key } })));
    assert.ok(results.every((r) => r.statusCode === 401));
    const used = counts.refreshes - before;
    assert.ok(used >= 1 && used <= 10, `200 concurrent unknown keys took ${used} refreshes`);
  });

  it('a key made elsewhere (the CLI, another node) works on its first use: the refresh finds it', async () => {
    const k = await insertElsewhere(node, node.tenantId);
    assert.equal((await node.app.inject({ url: PROBE, headers: { 'x-api-key': k.key } })).statusCode, 200);
    assert.equal((await node.app.inject({ url: PROBE, headers: { 'x-api-key': `${k.key.slice(0, 16)}${generateKey().key.slice(16)}` } })).statusCode, 401);
  });
});

describe('the key index itself', () => {
  let node: AuthNode;
  before(async () => {
    node = await startAuthNode();
  });
  after(async () => node?.close());

  it('a key older than the refresh overlap, committed late, is found by the next full reload', async () => {
    let now = Date.now();
    const index = new KeyIndex(node.auth.store, { now: () => now });
    const first = await insertElsewhere(node, node.tenantId);
    assert.equal((await index.screen(first.id, first.digest)).status, 'indexed');
    const late = await insertElsewhere(node, node.tenantId, new Date(Date.now() - 3_600_000));
    assert.equal((await index.screen(late.id, late.digest)).status, 'unknown', 'an incremental refresh reads only recent keys');
    now += FULL_RELOAD_MS;
    assert.equal((await index.screen(late.id, late.digest)).status, 'indexed');
  });

  it('past its bound it steps aside: ids are looked up one by one again, valid keys still pass, and the overflow is reported once', async () => {
    const overflows: number[] = [];
    const index = new KeyIndex(node.auth.store, { max: 2, onOverflow: (n) => void overflows.push(n) });
    for (let i = 0; i < 3; i++) await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] });
    const resolver = new KeyResolver(node.auth.store, new InProcessBus(), KEY_CACHE_TTL_MS, Date.now, index);
    const gate = createAuthGate({
      config: testConfig(),
      security: node.platform.security,
      metrics: node.platform.metrics,
      resolver,
      bindTenant: node.auth.bindTenant,
    });
    const app = await buildServer(node.platform, {
      role: 'index-test',
      version: '0.0.0-test',
      gate,
      plugins: [{ name: 'probes', plugin: probeRoutes(new Map(), node.auth.bindTenant) }],
    });
    try {
      const valid = (await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] })).key;
      assert.equal((await app.inject({ url: PROBE, headers: { 'x-api-key': generateKey().key } })).statusCode, 401);
      assert.equal((await app.inject({ url: PROBE, headers: { 'x-api-key': valid } })).statusCode, 200);
      assert.equal((await index.screen(generateKey().id, randomBytes(32))).status, 'unindexed');
      assert.equal(overflows.length, 1);
      assert.ok(overflows[0]! > 2);
    } finally {
      await app.close();
      await resolver.close();
    }
  });
});

describe('invalid keys are limited per key id as well as per address', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ captureLogs: true });
  });
  after(async () => t?.close());

  it('many addresses guessing one key id are refused with 429; the key itself keeps working, other ids are untouched', async () => {
    const target = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'] })).key;
    const points = DEFAULT_RATE_LIMIT_POLICY.invalid_keys.points;
    const guess = () => `${target.slice(0, 16)}${generateKey().key.slice(16)}`;
    for (let i = 0; i < points; i++) {
      const res = await t.app.inject({ url: '/decisions', headers: { 'x-api-key': guess() }, remoteAddress: `100.64.${i}.1` });
      assert.equal(res.statusCode, 401, `attempt ${i + 1}`);
    }
    const refused = await t.app.inject({ url: '/decisions', headers: { 'x-api-key': guess() }, remoteAddress: '100.64.200.1' });
    assert.equal(refused.statusCode, 429, refused.body);
    assert.match(refused.json().detail, /for this key id/);
    assert.ok(Number(refused.headers['retry-after']) > 0);
    const flood = authEvents(t.logs!).filter((l) => l.reason === 'invalid_key_flood');
    assert.equal(flood.at(-1)!.per, 'key_id');
    assert.equal(
      (await t.app.inject({ url: '/decisions', headers: { 'x-api-key': target }, remoteAddress: '100.64.201.1' })).statusCode,
      200,
      'the holder is never locked out',
    );
    const other = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'] })).key;
    const otherGuess = await t.app.inject({
      url: '/decisions',
      headers: { 'x-api-key': `${other.slice(0, 16)}${generateKey().key.slice(16)}` },
      remoteAddress: '100.64.202.1',
    });
    assert.equal(otherGuess.statusCode, 401);
  });
});
