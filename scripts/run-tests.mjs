#!/usr/bin/env node
// Runs every test file under test/ with node's test runner through tsx. Node 20 has no glob
// support in --test, so the files are listed here. Extra arguments filter by path substring:
//   npm test -- ledger          only files whose path contains "ledger"
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' || e.name === 'node_modules' ? [] : walk(full);
    return e.name.endsWith('.test.ts') ? [full] : [];
  });
}

const files = walk(path.join(root, 'test'))
  .map((f) => path.relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((q) => f.includes(q)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

// Most tests wait on I/O (databases, namespaces, child processes), so run more files than cores.
const concurrency = process.env.FG_TEST_CONCURRENCY ?? '4';
const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...files];
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, FG_ENV: 'test' } });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
