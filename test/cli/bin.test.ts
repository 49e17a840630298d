import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cliEnv, ROOT } from '../helpers/cli.js';

const BIN = path.join(ROOT, 'bin/frostgate.mjs');
const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: cliEnv(), encoding: 'utf8' });

describe('the frostgate command runs the compiled CLI', () => {
  it('runs dist/ after a build, and src/ through tsx (saying so) once a source is newer', { timeout: 300_000 }, () => {
    const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    const stamp = JSON.parse(readFileSync(path.join(ROOT, 'dist/build.json'), 'utf8')) as { sources: number };
    assert.ok(stamp.sources > 100);

    const fresh = run(['--help']);
    assert.equal(fresh.status, 0, fresh.stderr);
    assert.match(fresh.stdout, /Usage: frostgate/);
    assert.doesNotMatch(fresh.stderr, /running from source/);

    // An edited source (here: only its time) makes dist/ stale: the bin must not run old code silently.
    const file = path.join(ROOT, 'src/version.ts');
    const { atime, mtime } = statSync(file);
    try {
      utimesSync(file, atime, new Date(Date.now() + 60_000));
      const stale = run(['--help']);
      assert.equal(stale.status, 0, stale.stderr);
      assert.match(stale.stdout, /Usage: frostgate/);
      assert.match(stale.stderr, /dist\/ is missing or older than src\/; running from source/);
    } finally {
      utimesSync(file, atime, mtime);
      // A Date restores the time to the millisecond only: build again so dist/ is fresh for every later run.
      spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, encoding: 'utf8' });
    }
    assert.doesNotMatch(run(['--help']).stderr, /running from source/);
  });
});
