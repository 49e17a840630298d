import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidScopeError, SCOPES, hasScope, isScope, missingScopes, parseScopes } from '../../../src/platform/auth/scopes.js';

/**
 * The oracle, written out by hand: every scope, and for each held scope every scope it grants.
 * Only `admin` implies others; no scope grants a sibling (governance:write is not
 * governance:approve, forge:spawn is not forge:operate). Nothing here is computed with scopes.ts.
 */
const ALL = [
  'defend:write',
  'ingest:write',
  'decisions:read',
  'decisions:write',
  'bouncer:read',
  'governance:write',
  'governance:approve',
  'keys:admin',
  'forge:spawn',
  'forge:operate',
  'ratelimit:bypass',
  'admin',
];
const GRANTS: Record<string, readonly string[]> = {
  'defend:write': ['defend:write'],
  'ingest:write': ['ingest:write'],
  'decisions:read': ['decisions:read'],
  'decisions:write': ['decisions:write'],
  'bouncer:read': ['bouncer:read'],
  'governance:write': ['governance:write'],
  'governance:approve': ['governance:approve'],
  'keys:admin': ['keys:admin'],
  'forge:spawn': ['forge:spawn'],
  'forge:operate': ['forge:operate'],
  'ratelimit:bypass': ['ratelimit:bypass'],
  admin: [
    'defend:write',
    'ingest:write',
    'decisions:read',
    'decisions:write',
    'bouncer:read',
    'governance:write',
    'governance:approve',
    'keys:admin',
    'forge:spawn',
    'forge:operate',
    'ratelimit:bypass',
    'admin',
  ],
};

describe('scopes.ts against a hand-written oracle', () => {
  it('knows exactly the documented scopes', () => {
    assert.deepEqual([...SCOPES].sort(), [...ALL].sort());
    for (const s of ALL) assert.equal(isScope(s), true, s);
    for (const s of ['', 'Admin', 'admin ', 'governance', 'governance:*', '*', 'forge:spawn,forge:operate', 'toString', '__proto__'])
      assert.equal(isScope(s), false, JSON.stringify(s));
  });

  it('hasScope: a single held scope grants exactly what the table says, for all 121 pairs', () => {
    for (const held of ALL) {
      for (const needed of ALL) {
        assert.equal(hasScope([held], needed), GRANTS[held]!.includes(needed), `${held} => ${needed}`);
      }
    }
  });

  it('hasScope: the siblings a careless change would merge stay apart', () => {
    const siblings: Array<[string, string]> = [
      ['governance:write', 'governance:approve'],
      ['forge:spawn', 'forge:operate'],
      ['defend:write', 'ingest:write'],
      ['decisions:read', 'bouncer:read'],
      ['keys:admin', 'admin'],
    ];
    for (const [a, b] of siblings) {
      assert.equal(hasScope([a], b), false, `${a} must not grant ${b}`);
      assert.equal(hasScope([b], a), b === 'admin', `${b} => ${a}`);
    }
  });

  it('hasScope: sets of scopes grant the union, no more; unknown and empty grant nothing', () => {
    assert.equal(hasScope(['governance:write', 'forge:spawn'], 'governance:write'), true);
    assert.equal(hasScope(['governance:write', 'forge:spawn'], 'forge:spawn'), true);
    assert.equal(hasScope(['governance:write', 'forge:spawn'], 'governance:approve'), false);
    assert.equal(hasScope(['governance:write', 'forge:spawn'], 'forge:operate'), false);
    assert.equal(hasScope([], 'decisions:read'), false);
    assert.equal(hasScope(['Admin', 'ADMIN', 'admin '], 'decisions:read'), false, 'scope names are exact');
    assert.equal(hasScope(['governance:*'], 'governance:approve'), false, 'no wildcards');
    for (const needed of ALL) assert.equal(hasScope(['admin'], needed), true);
  });

  it('missingScopes lists what a key lacks, in the order needed', () => {
    assert.deepEqual(missingScopes(['governance:write'], ['governance:write', 'governance:approve']), ['governance:approve']);
    assert.deepEqual(missingScopes(['forge:spawn'], ['forge:operate', 'forge:spawn', 'keys:admin']), ['forge:operate', 'keys:admin']);
    assert.deepEqual(missingScopes(['admin'], ALL), []);
    assert.deepEqual(missingScopes([], []), []);
  });

  it('parseScopes: splits on commas and spaces, dedupes, sorts, and refuses unknown names with the valid list', () => {
    assert.deepEqual(parseScopes('decisions:read,defend:write'), ['decisions:read', 'defend:write']);
    assert.deepEqual(parseScopes(' forge:spawn  forge:spawn,,admin '), ['admin', 'forge:spawn']);
    assert.deepEqual(parseScopes(['keys:admin', 'keys:admin']), ['keys:admin']);
    assert.throws(
      () => parseScopes(''),
      (err: unknown) => err instanceof InvalidScopeError && /no scopes given; valid scopes: defend:write/.test(err.message),
    );
    assert.throws(
      () => parseScopes('governance:write,governance:*'),
      (err: unknown) => err instanceof InvalidScopeError && /unknown scope\(s\) governance:\*/.test(err.message),
    );
    assert.throws(() => parseScopes(['ADMIN']), InvalidScopeError);
  });
});
