import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../../helpers/cli.js';

/** The shape of a key's prefix, built so this file does not contain one itself. */
const KEY_PREFIX = new RegExp(['fg', '_[a-z2-9]{12}_'].join(''), 'g');
const SCANNED = ['src', 'test', 'bench', 'docs', 'scripts', 'policies', 'migrations', 'README.md'];
const SKIP_DIRS = new Set(['node_modules', '.git', 'data', 'storage']);

function* files(p: string): Generator<string> {
  let st;
  try {
    st = statSync(p);
  } catch {
    return; // a folder this checkout does not have
  }
  if (st.isFile()) {
    yield p;
    return;
  }
  for (const entry of readdirSync(p)) if (!SKIP_DIRS.has(entry)) yield* files(path.join(p, entry));
}

/**
 * Key-shaped strings other teams keep on purpose, each unable to work: `file: literal prefix`.
 * Anything not listed fails the test. Prefer building such samples at run time.
 */
const KNOWN_NON_KEYS: ReadonlyArray<{ file: string; id: string; why: string }> = [
  { file: 'test/core/ratelimit/limiter.test.ts', id: 'a'.repeat(12), why: 'an id with a fresh random secret per request, to provoke 401s' },
  // a redaction sample for the PII sanitizer: no database holds its digest (see the digest rule below)
  ...['test/fixtures/pii/manifest.json', 'test/fixtures/pii/shell-transcript.txt', 'test/forge/sanitizer/sanitize-text.test.ts'].map((file) => ({
    file,
    id: 'k7m2qx9wrt4p',
    why: 'sanitizer sample',
  })),
];
const allowed = new Set(KNOWN_NON_KEYS.map((k) => `${k.file}: ${['fg', k.id, ''].join('_')}`));

function scan(pattern: RegExp): { found: string[]; scanned: number } {
  const found: string[] = [];
  let scanned = 0;
  for (const top of SCANNED) {
    for (const file of files(path.join(ROOT, top))) {
      if (statSync(file).size > 5_000_000) continue;
      scanned++;
      const text = readFileSync(file, 'latin1');
      for (const m of text.matchAll(pattern)) found.push(`${path.relative(ROOT, file)}: ${m[0]}`);
    }
  }
  return { found, scanned };
}

describe('test fixtures generate their keys: no key literal works against any server', () => {
  it('no file in the repository carries an API key literal (fg_<id>_...)', () => {
    const { found, scanned } = scan(KEY_PREFIX);
    assert.ok(scanned > 50, `scanned ${scanned} files`);
    const unexpected = found.filter((f) => !allowed.has(f));
    assert.deepEqual(unexpected, [], 'generate keys per run (store.createKey / POST /keys) instead of committing them');
  });

  it('only the key store turns a chosen string into a stored digest, so no literal can be planted', () => {
    // Keys are inserted with generateKey()'s random secret; hashing a chosen string with the key
    // digest function outside src/core/auth would let a fixture store a known key.
    const { found } = scan(new RegExp(['digest', 'Key\\('].join(''), 'g'));
    const outside = found.filter((f) => !f.startsWith('src/core/auth/'));
    assert.ok(
      found.some((f) => f.startsWith('src/core/auth/')),
      'the scan sees the key store itself',
    );
    assert.deepEqual(outside, []);
  });

  it('the pattern finds a key-shaped literal (so the scan above can fail)', () => {
    const sample = ['fg', 'abcdefghijkm', 'x'.repeat(43)].join('_');
    assert.equal([...sample.matchAll(KEY_PREFIX)].length, 1);
  });
});
