import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(ROOT, 'test/fixtures/lint');

/**
 * Each fixture says where it pretends to live (`// lint as: src/...`) and which rule must refuse it
 * (`// expect: <rule>`, or `nothing`). It is linted with the repository's eslint.config.js at that
 * path; only type information is left out, because the TypeScript project does not hold a file that
 * is not on disk (the rules under test here read no types).
 */
function fixtures(): Array<{ name: string; text: string; lintAs: string; expect: string }> {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((name) => {
      const text = readFileSync(path.join(FIXTURES, name), 'utf8');
      const lintAs = /^\/\/ lint as: (\S+)$/m.exec(text)?.[1];
      const expect = /^\/\/ expect: (\S+)$/m.exec(text)?.[1];
      assert.ok(lintAs && expect, `${name} says where it is linted and what it expects`);
      return { name, text, lintAs, expect };
    });
}

describe('eslint.config.js: the layer rule and the front-door rule (docs/architecture.md)', () => {
  const cases = fixtures();
  const virtualPaths = [...new Set(cases.map((c) => c.lintAs))];
  const eslint = new ESLint({ cwd: ROOT, overrideConfig: [{ files: virtualPaths, ...tseslint.configs.disableTypeChecked }] });

  it('has fixtures for every layer rule, a barrel, a re-export and an import that is fine', () => {
    const expected = cases.map((c) => c.expect);
    assert.ok(expected.filter((e) => e === 'boundaries/dependencies').length >= 5, 'wrong imports across the layers');
    for (const rule of ['no-restricted-imports', 'no-restricted-syntax', 'nothing']) assert.ok(expected.includes(rule), `a fixture expecting ${rule}`);
  });

  for (const c of cases) {
    it(`${c.name} linted as ${c.lintAs}: ${c.expect === 'nothing' ? 'no error' : c.expect}`, async () => {
      const [result] = await eslint.lintText(c.text, { filePath: path.join(ROOT, c.lintAs) });
      assert.ok(result, 'a lint result');
      const errors = result.messages.filter((m) => m.severity === 2).map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
      if (c.expect === 'nothing') {
        assert.deepEqual(errors, []);
        return;
      }
      assert.equal(errors.length, 1, `exactly one error, got ${JSON.stringify(errors)}`);
      assert.ok(errors[0]!.startsWith(`${c.expect}: `), `${c.expect}, got ${errors[0]}`);
      if (c.expect === 'boundaries/dependencies') assert.match(errors[0]!, /may not import src\/\S+ \(\w+\): imports point down only/);
    });
  }
});
