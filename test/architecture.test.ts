import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rel = (p: string) => path.relative(ROOT, p).split(path.sep).join('/');

function walk(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full, ext) : e.name.endsWith(ext) ? [full] : [];
  });
}

/** The layer of a file of src/, and its rank: imports may only point at a lower rank. */
function layerOf(file: string): { layer: string; rank: number } {
  const p = rel(file);
  if (p === 'src/roles.ts' || p === 'src/role-names.ts') return { layer: 'roles', rank: 5 };
  if (p === 'src/version.ts') return { layer: 'config', rank: 1 };
  const top = p.split('/')[1]!;
  const ranks: Record<string, number> = { cli: 6, core: 4, forge: 4, ledger: 3, platform: 2, policy: 1, config: 1 };
  assert.ok(top in ranks, `${p}: a directory of src/ the layer rule does not know; add it to docs/architecture.md and here`);
  return { layer: top, rank: ranks[top]! };
}

describe('architecture (docs/architecture.md)', () => {
  it('imports point down only: cli → roles → forge, core → ledger → platform → policy, config', () => {
    const wrong: string[] = [];
    let seen = 0;
    for (const file of walk(path.join(ROOT, 'src'), '.ts')) {
      const from = layerOf(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'));
        if (!rel(target).startsWith('src/')) continue;
        seen++;
        const to = layerOf(target);
        if (to.layer === from.layer) continue;
        if (to.rank < from.rank) continue;
        wrong.push(`${rel(file)} (${from.layer}) imports ${rel(target)} (${to.layer})`);
      }
    }
    assert.ok(seen > 500, `the walk saw the imports (${seen})`);
    assert.deepEqual(wrong, [], 'an import points up or sideways');
  });

  it('names every table of migrations/ with the module that writes it and the ones that read it', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');
    const tables = walk(path.join(ROOT, 'migrations'), '.sql').flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)/g)].map((m) => m[1]!),
    );
    assert.ok(tables.length >= 20, `found the tables (${tables.length})`);
    const rows = new Map(
      [...doc.matchAll(/^\| `([a-z_]+)` \| ([^|]+) \| ([^|]+) \|$/gm)].map((m) => [m[1]!, { writers: m[2]!.trim(), readers: m[3]!.trim() }]),
    );
    for (const table of tables) {
      const row = rows.get(table);
      assert.ok(row, `docs/architecture.md lists table ${table}`);
      assert.ok(row.writers.length > 3 && row.readers.length > 3, `${table}: a writer and readers`);
    }
  });

  it('README and docs link nothing outside the repository, and README links the architecture', () => {
    const files = [path.join(ROOT, 'README.md'), ...walk(path.join(ROOT, 'docs'), '.md')];
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      // Markdown link targets and backticked paths that climb out of the repository.
      const targets = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).concat([...text.matchAll(/`((?:\.\.\/)+[^`\s]*)`/g)].map((m) => m[1]!));
      for (const target of targets) {
        if (/^(https?:|mailto:|#)/.test(target)) continue;
        const resolved = path.resolve(path.dirname(file), target.split('#')[0]!);
        assert.ok(rel(resolved) !== '' && !rel(resolved).startsWith('..'), `${rel(file)} links ${target}, outside the repository`);
        assert.ok(existsSync(resolved), `${rel(file)} links ${target}, which does not exist`);
      }
      assert.ok(!/\/work\/|shared\/DESIGN\.md/.test(text), `${rel(file)} names a path outside the repository`);
    }
    assert.match(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), /\]\(docs\/architecture\.md\)/);
  });
});
