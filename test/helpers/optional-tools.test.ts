import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

/**
 * optionalTool: a test needing a missing tool is skipped locally (saying why) and fails in CI.
 * Shown on a small test file run by node's own test runner, once as a developer (CI unset) and
 * once as CI (CI=true), for both a test() and a describe() that need the tool.
 */

const dir = mkdtempSync(path.join(tmpdir(), 'fg-optional-tools-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const helper = pathToFileURL(path.join(import.meta.dirname, 'optional-tools.ts')).href;
const file = path.join(dir, 'needs-tools.test.ts');
writeFileSync(
  file,
  `
import { describe, it, test } from 'node:test';
import { optionalTool } from ${JSON.stringify(helper)};
const missing = optionalTool('frobnicator missing: apt-get install frobnicator');
const present = optionalTool(false);
test('uses the missing tool', { skip: missing.skip }, missing.test(async () => { throw new Error('ran without the tool'); }));
describe('a suite using the missing tool', { skip: missing.skip }, missing.suite(() => {
  it('inner', () => { throw new Error('ran without the tool'); });
}));
test('uses a present tool', { skip: present.skip }, present.test(async () => {}));
`,
);

function runFile(ci: boolean): Promise<{ code: number | null; out: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'CI' && !k.startsWith('NODE_TEST')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], {
      env: { ...env, ...(ci ? { CI: 'true' } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

const count = (out: string, what: string) => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(out)?.[1]);

describe('optionalTool', () => {
  it('locally: skips what needs the missing tool, saying why, and runs the rest', async () => {
    const { code, out } = await runFile(false);
    assert.equal(code, 0, out);
    // The runner counts the skipped test; the skipped suite is reported, its tests never registered.
    assert.equal(count(out, 'skipped'), 1, out);
    assert.equal(count(out, 'pass'), 1, out);
    assert.equal(out.match(/# SKIP frobnicator missing: apt-get install frobnicator/g)?.length, 2, out);
    assert.doesNotMatch(out, /ran without the tool/);
  });

  it('in CI (CI=true): every test needing the missing tool fails with the reason; nothing is skipped', async () => {
    const { code, out } = await runFile(true);
    assert.equal(code, 1, out);
    assert.equal(count(out, 'skipped'), 0, out);
    assert.equal(count(out, 'fail'), 2, out);
    assert.equal(count(out, 'pass'), 1, out);
    assert.equal(out.match(/required in CI \(CI=true\), where nothing may be skipped: frobnicator missing: apt-get install frobnicator/g)?.length, 2, out);
    assert.doesNotMatch(out, /ran without the tool/);
  });
});
