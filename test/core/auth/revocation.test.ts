import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KEY_CACHE_TTL_MS, KeyResolver } from '../../../src/core/auth/key-resolver.js';
import { InProcessBus, NatsBus } from '../../../src/platform/bus/bus.js';
import { createThrowawayDatabase } from '../../helpers/postgres.js';
import { startThrowawayNats } from '../../helpers/servers.js';
import { eventually, probePath, startAuthNode, type AuthNode } from './helpers.js';

const PROBE = probePath('decisions:read');
const probe = (node: AuthNode, key: string) => node.app.inject({ url: PROBE, headers: { 'x-api-key': key } });

describe('revocation bound', () => {
  it(`a cached key is trusted for exactly KEY_CACHE_TTL_MS (${KEY_CACHE_TTL_MS} ms) after its lookup, then the database decides`, async () => {
    const node = await startAuthNode();
    let now = 1_000_000;
    const resolver = new KeyResolver(node.auth.store, new InProcessBus(), KEY_CACHE_TTL_MS, () => now);
    try {
      const k = await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] });
      const first = await resolver.resolve(k.id);
      assert.equal(first.status, 'found');
      await node.auth.store.revokeKey(node.tenantId, k.id);
      now += KEY_CACHE_TTL_MS - 1;
      const cached = await resolver.resolve(k.id);
      assert.ok(cached.status === 'found' && cached.record.revokedAt === null, 'within the bound the cached state may still be used');
      now += 1;
      const fresh = await resolver.resolve(k.id);
      assert.ok(fresh.status === 'found' && fresh.record.revokedAt !== null, 'at the bound the revocation is seen');
      // invalidate() (what a bus message does) ends the trust at once.
      const k2 = await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] });
      await resolver.resolve(k2.id);
      await node.auth.store.revokeKey(node.tenantId, k2.id);
      resolver.invalidate(k2.id);
      const after = await resolver.resolve(k2.id);
      assert.ok(after.status === 'found' && after.record.revokedAt !== null);
    } finally {
      await resolver.close();
      await node.close();
    }
  });

  it('revoking over HTTP holds at once on the same node; a second node on the same Postgres sees it within its TTL', async () => {
    const db = await createThrowawayDatabase();
    const nodes: AuthNode[] = [];
    try {
      const a = await startAuthNode({ env: { FG_DB_URL: db.url }, keyRoutes: true });
      nodes.push(a);
      const ttl = 300;
      const b = await startAuthNode({ env: { FG_DB_URL: db.url }, keyCacheTtlMs: ttl });
      nodes.push(b);
      assert.equal(b.adminKey, undefined, 'B joined the database A bootstrapped');
      const k = await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['decisions:read'] });
      assert.equal((await probe(a, k.key)).statusCode, 200);
      assert.equal((await probe(b, k.key)).statusCode, 200, 'B looked the key up and cached it');

      const del = await a.app.inject({ method: 'DELETE', url: `/keys/${k.id}`, headers: { 'x-api-key': a.adminKey! } });
      assert.equal(del.statusCode, 200, del.body);
      assert.equal((await probe(a, k.key)).statusCode, 401, 'the revoking node refuses the next request');
      // Polled with generous slack for a loaded machine; the exact bound is proven with a clock above.
      await eventually(async () => (await probe(b, k.key)).statusCode === 401, ttl + 5_000, 'node B refuses the revoked key');
      assert.equal((await probe(b, k.key)).statusCode, 401);
    } finally {
      for (const n of nodes.reverse()) await n.close();
      await db.drop();
    }
  });

  it('with NATS, the revocation message reaches the other node long before its cache would expire', async () => {
    const nats = await startThrowawayNats();
    const db = await createThrowawayDatabase();
    const nodes: AuthNode[] = [];
    try {
      const env = { FG_DB_URL: db.url, FG_NATS_URL: nats.url };
      const a = await startAuthNode({ env, keyRoutes: true });
      nodes.push(a);
      const b = await startAuthNode({ env, keyCacheTtlMs: 10 * 60_000 });
      nodes.push(b);
      assert.equal(b.platform.bus.kind, 'nats');
      await (b.platform.bus as NatsBus).nc.flush(); // B's subscription is registered on the server

      const k = await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['decisions:read'] });
      const other = await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['decisions:read'] });
      assert.equal((await probe(b, k.key)).statusCode, 200);
      assert.equal((await probe(b, other.key)).statusCode, 200);
      // Revoked in the database behind B's back: with a 10-minute TTL, B keeps trusting its cache...
      await a.auth.store.revokeKey(a.tenantId, other.id);
      assert.equal((await probe(b, other.key)).statusCode, 200, 'without a message B relies on its cache (the TTL bound)');

      const del = await a.app.inject({ method: 'DELETE', url: `/keys/${k.id}`, headers: { 'x-api-key': a.adminKey! } });
      assert.equal(del.statusCode, 200);
      // ... but the revocation through the API is published, and B drops the key at once.
      await eventually(async () => (await probe(b, k.key)).statusCode === 401, 5_000, 'node B refuses the key after the bus message');
    } finally {
      for (const n of nodes.reverse()) await n.close();
      await db.drop();
      await nats.stop();
      await (nats as unknown as { dispose?: () => Promise<void> }).dispose?.();
    }
  });
});

describe('last_used_at', () => {
  it('is not written per request; one flush writes every used key, and the API shows it', async () => {
    const node = await startAuthNode({ keyRoutes: true });
    try {
      const k1 = await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] });
      const k2 = await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] });
      const unused = await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] });
      const start = Date.now();
      for (let i = 0; i < 5; i++) {
        assert.equal((await probe(node, k1.key)).statusCode, 200);
        assert.equal((await probe(node, k2.key)).statusCode, 200);
      }
      const lastUsed = async () => Object.fromEntries((await node.auth.store.listKeys(node.tenantId)).map((k) => [k.id, k.last_used_at]));
      const before = await lastUsed();
      assert.equal(before[k1.id], null, 'ten authenticated requests wrote nothing');
      assert.equal(before[k2.id], null);

      await node.auth.resolver.flushTouches();
      const after = await lastUsed();
      for (const id of [k1.id, k2.id]) {
        assert.ok(after[id], `${id} has last_used_at after the flush`);
        assert.ok(Date.parse(after[id]) >= start - 1000);
      }
      assert.equal(after[unused.id], null);
      const shown = await node.app.inject({ url: `/keys/${k1.id}`, headers: { 'x-api-key': node.adminKey! } });
      assert.equal(shown.json().last_used_at, after[k1.id]);
      // Keys not used since are not rewritten by the next flush.
      await node.auth.resolver.flushTouches();
      const again = await lastUsed();
      assert.deepEqual([again[k1.id], again[k2.id], again[unused.id]], [after[k1.id], after[k2.id], null]);
    } finally {
      await node.close();
    }
  });
});
