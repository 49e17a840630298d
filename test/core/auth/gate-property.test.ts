import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { SCOPES, type Scope } from '../../../src/platform/auth/scopes.js';
import { generateKey } from '../../../src/core/auth/key-format.js';
import { probePath, startAuthNode, type AuthNode } from './helpers.js';

type KeyState = 'valid' | 'revoked' | 'expired' | 'tenant_disabled';
interface PoolKey {
  readonly key: string;
  readonly tenant: string;
  readonly scopes: readonly Scope[];
  readonly state: KeyState;
}

/**
 * The oracle, written by hand rather than computed with hasScope: for each scope a key holds, the
 * probe routes it opens. Only admin opens others; `/probe/tenant` needs no scope at all.
 */
const OPENS: Record<Scope, readonly string[]> = {
  'defend:write': ['/probe/defend-write'],
  'ingest:write': ['/probe/ingest-write'],
  'decisions:read': ['/probe/decisions-read'],
  'decisions:write': ['/probe/decisions-write'],
  'bouncer:read': ['/probe/bouncer-read'],
  'governance:write': ['/probe/governance-write'],
  'governance:approve': ['/probe/governance-approve'],
  'keys:admin': ['/probe/keys-admin'],
  'forge:spawn': ['/probe/forge-spawn'],
  'forge:operate': ['/probe/forge-operate'],
  'ratelimit:bypass': ['/probe/ratelimit-bypass'],
  admin: [
    '/probe/defend-write',
    '/probe/ingest-write',
    '/probe/decisions-read',
    '/probe/decisions-write',
    '/probe/bouncer-read',
    '/probe/governance-write',
    '/probe/governance-approve',
    '/probe/keys-admin',
    '/probe/forge-spawn',
    '/probe/forge-operate',
    '/probe/ratelimit-bypass',
    '/probe/admin',
  ],
};

/** Scope sets the pool's keys hold: every scope alone (so a sibling granted by mistake shows), and a few sets. */
const SCOPE_SETS: Scope[][] = [
  ...SCOPES.map((s) => [s]),
  ['defend:write', 'ingest:write'],
  ['governance:write', 'governance:approve'],
  ['forge:spawn', 'forge:operate', 'ratelimit:bypass'],
];

describe('auth gate property: nothing reaches a handler without a valid key holding the scope', () => {
  let node: AuthNode;
  const pool: PoolKey[] = [];
  const tenants: string[] = [];
  const run = randomBytes(3).toString('hex');

  before(async () => {
    node = await startAuthNode();
    const store = node.auth.store;
    for (const name of ['pa', 'pb', 'pc']) {
      const id = `${name}-${run}`;
      await store.createTenant(id);
      tenants.push(id);
    }
    const disabled = `pd-${run}`;
    await store.createTenant(disabled);
    for (const tenant of [...tenants, disabled]) {
      for (const scopes of SCOPE_SETS) {
        const state: KeyState = tenant === disabled ? 'tenant_disabled' : 'valid';
        pool.push({ key: (await store.createKey({ tenantId: tenant, scopes })).key, tenant, scopes, state });
      }
      if (tenant === disabled) continue;
      const revoked = await store.createKey({ tenantId: tenant, scopes: ['admin'] });
      await store.revokeKey(tenant, revoked.id);
      pool.push({ key: revoked.key, tenant, scopes: ['admin'], state: 'revoked' });
      const expired = await store.createKey({ tenantId: tenant, scopes: ['admin'], expiresAt: new Date(Date.now() - 60_000) });
      pool.push({ key: expired.key, tenant, scopes: ['admin'], state: 'expired' });
    }
    await node.platform.db.db.updateTable('tenants').set({ disabled_at: new Date() }).where('id', '=', disabled).execute();
  });
  after(async () => node?.close());

  it('the oracle names every probe route the helper mounts', () => {
    const opened = new Set(Object.values(OPENS).flat());
    assert.deepEqual([...opened].sort(), SCOPES.map(probePath).sort());
  });

  it('exhaustively: each scope set opens exactly the probe routes the oracle lists', async () => {
    const valid = pool.filter((k) => k.state === 'valid' && k.tenant === tenants[0]);
    assert.equal(valid.length, SCOPE_SETS.length);
    for (const k of valid) {
      for (const scope of SCOPES) {
        const path = probePath(scope);
        const res = await node.app.inject({ url: path, headers: { 'x-api-key': k.key } });
        const allowed = k.scopes.some((s) => OPENS[s].includes(path));
        assert.equal(res.statusCode, allowed ? 200 : 403, `${k.scopes.join(',')} on ${path}: ${res.body}`);
      }
    }
  });

  it('holds for random keys, tenants, scopes and header combinations', async () => {
    const known = fc.constantFrom(...pool);
    /** What the request presents as its key, and the pool entry it really is (if any). */
    const presented = fc.oneof(
      { weight: 6, arbitrary: known.map((k) => ({ value: k.key, entry: k })) },
      // a real key with one character changed: another id (unknown), a wrong secret, or malformed
      {
        weight: 2,
        arbitrary: fc.tuple(known, fc.nat(), fc.constantFrom('a', 'Z', '9', '_', '-', ' ', '2')).map(([k, pos, ch]) => {
          const i = pos % k.key.length;
          const value = k.key.slice(0, i) + ch + k.key.slice(i + 1);
          return { value, entry: value === k.key ? k : undefined };
        }),
      },
      { weight: 1, arbitrary: fc.constant(0).map(() => ({ value: generateKey().key, entry: undefined as PoolKey | undefined })) },
      { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{0,70}$/).map((value) => ({ value, entry: undefined as PoolKey | undefined })) },
      { weight: 1, arbitrary: known.map((k) => ({ value: ` ${k.key}`, entry: undefined as PoolKey | undefined })) },
    );
    const how = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('x-api-key', 'X-API-Key') },
      { weight: 1, arbitrary: fc.constantFrom('authorization', 'none', 'query') },
    );
    const tenantHeader = fc.oneof(
      { weight: 3, arbitrary: fc.constant<{ kind: 'none' }>({ kind: 'none' }) },
      { weight: 2, arbitrary: fc.constant<{ kind: 'own' }>({ kind: 'own' }) },
      { weight: 1, arbitrary: fc.constantFrom(...tenants).map((id) => ({ kind: 'named' as const, id })) },
      { weight: 1, arbitrary: fc.constantFrom('unknown', '', 'UPPER', 'x').map((id) => ({ kind: 'named' as const, id })) },
    );
    // Any probe route, or one guarded by a scope the presented key holds (so both outcomes are common).
    const route = fc.oneof(
      fc.constantFrom<Scope | 'tenant'>(...SCOPES, 'tenant'),
      fc.nat().map((n) => ({ held: n })),
    );

    let reached = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(presented, how, tenantHeader, route, async (p, via, th, pick) => {
        const r: Scope | 'tenant' = typeof pick === 'object' ? (p.entry ? p.entry.scopes[pick.held % p.entry.scopes.length]! : 'decisions:read') : pick;
        const path = r === 'tenant' ? '/probe/tenant' : probePath(r);
        const headers: Record<string, string> = {};
        if (via === 'x-api-key' || via === 'X-API-Key') headers[via] = p.value;
        if (via === 'authorization') headers.authorization = `Bearer ${p.value}`;
        const ownTenant = p.entry?.tenant;
        const claimed = th.kind === 'own' ? (ownTenant ?? tenants[0]!) : th.kind === 'named' ? th.id : undefined;
        if (claimed !== undefined) headers['x-tenant-id'] = claimed;
        const url = via === 'query' ? `${path}?api_key=${encodeURIComponent(p.value)}` : path;

        const expected =
          (via === 'x-api-key' || via === 'X-API-Key') &&
          p.entry !== undefined &&
          p.entry.state === 'valid' &&
          (r === 'tenant' || p.entry.scopes.some((s) => OPENS[s].includes(path))) &&
          (claimed === undefined || claimed === p.entry.tenant);

        const before = node.calls.get(path) ?? 0;
        const res = await node.app.inject({ url, headers });
        const ran = (node.calls.get(path) ?? 0) - before;
        if (expected) {
          reached++;
          assert.equal(ran, 1, `should reach ${path}: ${res.statusCode} ${res.body}`);
          assert.equal(res.statusCode, 200);
          assert.equal(res.json().tenant, p.entry!.tenant, "the handler acts for the key's tenant");
        } else {
          refused++;
          assert.equal(ran, 0, `reached ${path} without a valid key and scope: ${JSON.stringify({ via, p, th })}`);
          assert.ok(res.statusCode >= 400 && res.statusCode < 500, `refused with a 4xx, got ${res.statusCode}`);
        }
      }),
      { numRuns: 1000 },
    );
    // Both sides of the property were exercised.
    assert.ok(reached > 100 && refused > 300, `reached ${reached}, refused ${refused}`);
  });
});
