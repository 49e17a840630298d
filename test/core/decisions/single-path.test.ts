import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * Every decision in the product goes through src/core/engine's evaluate(): this scans the source
 * (a structural check, the seed's `grep -r "def evaluate"` done properly) for any other place that
 * evaluates events, computes threat levels or mitigations, or writes decision records.
 */
/** Code only: comments may name evaluate() freely. */
function withoutComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/\s\/\/ .*$/gm, '');
}

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src');
const MIGRATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../migrations');
const files = (function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
})(SRC).map((f) => ({ rel: path.relative(SRC, f), text: withoutComments(readFileSync(f, 'utf8')) }));
const outsideEngine = files.filter((f) => !f.rel.startsWith('core/engine/'));

it('evaluate() is defined once, in the engine', () => {
  const definitions = files
    .filter((f) => /(?:function\s+evaluate\s*\(|\bevaluate\s*[:=]\s*(?:async\s*)?\(|^\s*(?:async\s+)?evaluate\s*\()/m.test(f.text))
    .map((f) => f.rel);
  assert.deepEqual(definitions, ['core/engine/evaluate.ts']);
});

it('only the decision service (and governance canary replays, which store nothing) call evaluate()', () => {
  const importers = outsideEngine
    .filter((f) => /import\s*\{[^}]*\bevaluate\b[^}]*\}\s*from\s*'[^']*engine/.test(f.text))
    .map((f) => f.rel)
    .sort();
  assert.deepEqual(importers, ['core/decisions/service.ts', 'core/governance/canary.ts']);
  const canary = files.find((f) => f.rel === 'core/governance/canary.ts')!;
  assert.doesNotMatch(canary.text, /insertInto\(\s*'decisions'/, 'canaries compare, they never store decisions');
});

it('no module but the engine maps scores to threat levels or gates mitigations', () => {
  const engineOnly = [
    /\bthreatLevelFor\s*\(/,
    /\bgateMitigations\s*\(/,
    /\bscore\s*[<>]=?\s*[\w.]*thresholds\b/,
    /\bthresholds\s*\[[^\]]+\]\s*[<>]=?\s*[\w.]*score\b/,
  ];
  for (const f of outsideEngine) {
    for (const re of engineOnly) assert.doesNotMatch(f.text, re, `${f.rel} must not compute what evaluate() computes (${re})`);
  }
});

it('decision records are written in one place: fg_decision_group_write, called by DecisionService.writePlanned, which /defend and /ingest both reach', () => {
  const writers = files.filter((f) => /insertInto\(\s*'decisions'\s*\)|INSERT INTO decisions\b/i.test(f.text)).map((f) => f.rel);
  assert.deepEqual(writers, [], 'no TypeScript module inserts decision rows itself');
  const migrations = readdirSync(MIGRATIONS)
    .filter((f) => f.endsWith('.sql'))
    .map((f) => ({ name: f, text: readFileSync(path.join(MIGRATIONS, f), 'utf8').replace(/--.*$/gm, '') }));
  const sqlWriters = migrations.filter((m) => /INSERT INTO decisions\b/i.test(m.text));
  assert.deepEqual(
    sqlWriters.map((m) => m.name),
    ['0014_decision_group_commit.sql'],
  );
  const insertAt = sqlWriters[0]!.text.search(/INSERT INTO decisions\b/i);
  const functionStarts = [...sqlWriters[0]!.text.matchAll(/CREATE FUNCTION (\w+)/g)].filter((m) => m.index < insertAt);
  assert.equal(functionStarts.at(-1)?.[1], 'fg_decision_group_write', 'the only INSERT INTO decisions is inside fg_decision_group_write');
  const callers = files.filter((f) => /fg_decision_group_write\(/.test(f.text)).map((f) => f.rel);
  assert.deepEqual(callers, ['core/decisions/service.ts']);
  assert.match(
    files.find((f) => f.rel === 'core/decisions/service.ts')!.text,
    /private async writePlanned\([\s\S]*fg_decision_group_write\(/,
    'called from DecisionService.writePlanned',
  );
  const routes = files.find((f) => f.rel === 'core/decisions/routes.ts')!.text;
  assert.match(routes, /service\.decide\(/, '/defend decides through DecisionService');
  const ingest = files.find((f) => f.rel === 'core/decisions/ingest.ts')!.text;
  assert.match(ingest, /decisions\.decideStaged\(/, 'the ingest consumer decides through DecisionService');
  assert.doesNotMatch(ingest, /evaluate\(/, 'the ingest consumer does not evaluate on its own');
});
