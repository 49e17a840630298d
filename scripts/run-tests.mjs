#!/usr/bin/env node
// Runs every test file under test/ with node's test runner through tsx. Node 20 has no glob
// support in --test, so the files are listed here. Extra arguments filter by path substring:
//   npm test -- ledger          only files whose path contains "ledger"
// With CI=true or FG_COVERAGE=1 (FG_COVERAGE=0 turns it off in CI), V8 collects coverage of every
// process the tests start, mapped through tsx's source maps to src/**/*.ts (c8), and a
// per-directory summary of lines of code covered is printed at the end; a whole-suite run fails
// when src/core, src/ledger or src/platform is below COVERAGE_THRESHOLD percent.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));

/** Directories whose line coverage must reach COVERAGE_THRESHOLD (the Core seed's "core modules"). */
const COVERAGE_GATED = ['src/core', 'src/ledger', 'src/platform'];
const COVERAGE_THRESHOLD = 80;
/** The other directories are printed for information. */
const COVERAGE_REPORTED = ['src/forge', 'src/cli', 'src/config', 'src/policy'];

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

const coverage = process.env.FG_COVERAGE === '1' || (process.env.CI === 'true' && process.env.FG_COVERAGE !== '0');
const coverageDir = coverage ? mkdtempSync(path.join(tmpdir(), 'fg-coverage-')) : undefined;

// Most tests wait on I/O (databases, namespaces, child processes), so run more files than cores.
const concurrency = process.env.FG_TEST_CONCURRENCY ?? '4';
// The runner's output is piped only to read its totals when coverage follows it (the spec reporter is
// kept on a terminal, which a pipe would turn into TAP).
const reporter = coverageDir && process.stdout.isTTY ? ['--test-reporter=spec'] : [];
const args = ['--import', 'tsx', '--test', ...reporter, `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...files];
const env = { ...process.env, FG_ENV: 'test', ...(coverageDir ? { NODE_V8_COVERAGE: coverageDir } : {}) };
const child = spawn(process.execPath, args, { cwd: root, stdio: ['inherit', coverageDir ? 'pipe' : 'inherit', 'inherit'], env });
const totals = {};
if (coverageDir) {
  let pending = '';
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) {
      const m = /^(?:#|\u2139)\s+(pass|fail|skipped)\s+(\d+)\s*$/.exec(line);
      if (m) totals[m[1]] = Number(m[2]);
    }
  });
}
// Interrupted (Ctrl-C, a CI timeout): stop the runner and leave no coverage files behind.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    child.kill(sig);
    if (coverageDir) rmSync(coverageDir, { recursive: true, force: true });
    process.exit(130);
  });
}
child.on('exit', (code, signal) => {
  const testCode = signal ? 1 : (code ?? 1);
  if (!coverageDir) process.exit(testCode);
  const finish = (exitCode) => {
    rmSync(coverageDir, { recursive: true, force: true });
    // The coverage report follows the runner's own summary: repeat its totals as the last line.
    if (totals.pass !== undefined)
      console.log(`tests: ${totals.pass} passed, ${totals.fail ?? 0} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`);
    process.exit(exitCode);
  };
  reportCoverage(coverageDir, filters.length === 0).then(
    (coverageOk) => finish(testCode !== 0 ? testCode : coverageOk ? 0 : 1),
    (err) => {
      console.error(`coverage: could not build the report: ${err?.stack ?? err}`);
      finish(testCode !== 0 ? testCode : 1);
    },
  );
});

/**
 * Lines that hold runtime code: where a statement starts (and the body of an arrow function
 * without braces), found with the TypeScript parser. c8 counts every line of a file, comments,
 * blank lines, interfaces and type aliases included, which would inflate the figure; this counts
 * what a test can actually run.
 */
function codeLines(file, ts) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const K = ts.SyntaxKind;
  const statements = new Set([
    K.VariableStatement,
    K.ExpressionStatement,
    K.ReturnStatement,
    K.IfStatement,
    K.ForStatement,
    K.ForOfStatement,
    K.ForInStatement,
    K.WhileStatement,
    K.DoStatement,
    K.SwitchStatement,
    K.ThrowStatement,
    K.TryStatement,
    K.BreakStatement,
    K.ContinueStatement,
    K.ClassDeclaration,
    K.ExportAssignment,
  ]);
  const lines = new Set();
  const mark = (node) => lines.add(source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1);
  const ambient = (node) => ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Ambient;
  const visit = (node) => {
    if (ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node) || ts.isImportDeclaration(node) || (ts.isModuleDeclaration(node) && ambient(node)))
      return;
    if (statements.has(node.kind) && !(ts.isVariableStatement(node) && ambient(node))) mark(node);
    else if (ts.isEnumDeclaration(node) && !(ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Const)) mark(node);
    else if (ts.isFunctionDeclaration(node) && node.body) mark(node.body.statements[0] ?? node);
    else if (ts.isPropertyDeclaration(node) && node.initializer && !ambient(node)) mark(node);
    else if (ts.isArrowFunction(node) && !ts.isBlock(node.body)) mark(node.body);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return lines;
}

let typescript;
function codeLineCoverage(file, hitsByLine) {
  const lines = codeLines(file, typescript);
  let covered = 0;
  for (const line of lines) if ((hitsByLine[line] ?? 0) > 0) covered++;
  return { covered, total: lines.size };
}

/**
 * Merges the V8 coverage every test process wrote, maps it to the .ts sources, and prints lines
 * covered per directory. Files no test loaded count as 0% (c8's `all`). Returns false when
 * `enforce` (a whole-suite run) and a gated directory is below the threshold.
 */
async function reportCoverage(dir, enforce) {
  const started = Date.now();
  console.log('\ncoverage: merging V8 coverage of every test process (src/**/*.ts through source maps)...');
  const { Report } = await import('c8');
  typescript = (await import('typescript')).default;
  const report = Report({
    include: ['src/**'],
    exclude: [],
    extension: ['.ts'],
    reporter: [],
    tempDirectory: dir,
    all: true,
    src: [path.join(root, 'src')],
    resolve: root,
    excludeAfterRemap: true,
    mergeAsync: true,
  });
  const map = await report.getCoverageMapFromAllCoverageFiles();
  const totals = new Map();
  const perFile = [];
  for (const file of map.files()) {
    const rel = path.relative(root, file).split(path.sep).join('/');
    const summary = codeLineCoverage(file, map.fileCoverageFor(file).getLineCoverage());
    const bucket = [...COVERAGE_GATED, ...COVERAGE_REPORTED].find((d) => rel.startsWith(`${d}/`)) ?? 'src (top level)';
    const t = totals.get(bucket) ?? { covered: 0, total: 0 };
    t.covered += summary.covered;
    t.total += summary.total;
    totals.set(bucket, t);
    perFile.push({ rel, bucket, covered: summary.covered, total: summary.total });
  }
  const rows = [...COVERAGE_GATED, ...COVERAGE_REPORTED, 'src (top level)']
    .filter((d) => totals.has(d))
    .map((d) => {
      const { covered, total } = totals.get(d);
      const pct = total === 0 ? 100 : (100 * covered) / total;
      const gated = COVERAGE_GATED.includes(d);
      return { d, covered, total, pct, gated, ok: !gated || pct >= COVERAGE_THRESHOLD };
    });
  const width = Math.max(...rows.map((r) => r.d.length));
  console.log(`coverage: lines covered per directory (${((Date.now() - started) / 1000).toFixed(1)} s to merge)`);
  console.log(`  ${'directory'.padEnd(width)}  ${'lines'.padStart(13)}  ${'covered'.padStart(7)}  threshold`);
  for (const r of rows) {
    const verdict = r.gated ? `>= ${COVERAGE_THRESHOLD}% ${r.ok ? 'ok' : 'BELOW'}` : '(not gated)';
    console.log(`  ${r.d.padEnd(width)}  ${`${r.covered}/${r.total}`.padStart(13)}  ${`${r.pct.toFixed(1)}%`.padStart(7)}  ${verdict}`);
  }
  // Where the missing lines are: for a gated directory below the threshold (or every gated one with
  // FG_COVERAGE_FILES=1), its files with the most uncovered lines.
  for (const r of rows.filter((x) => x.gated && (!x.ok || process.env.FG_COVERAGE_FILES === '1'))) {
    const worst = perFile
      .filter((f) => f.bucket === r.d && f.covered < f.total)
      .sort((a, b) => b.total - b.covered - (a.total - a.covered))
      .slice(0, process.env.FG_COVERAGE_FILES === '1' ? 1000 : 10);
    console.log(`  ${r.d}: most uncovered lines in`);
    for (const f of worst) console.log(`    ${f.rel}  ${f.total - f.covered} of ${f.total} lines uncovered`);
  }
  const below = rows.filter((r) => !r.ok);
  for (const gated of COVERAGE_GATED) if (!totals.has(gated)) below.push({ d: gated, pct: 0 });
  if (!enforce) {
    console.log('coverage: a filtered run covers only part of the suite; the threshold is checked on whole-suite runs only');
    return true;
  }
  if (below.length > 0) {
    console.log(`coverage: FAIL: ${below.map((r) => `${r.d} ${r.pct.toFixed(1)}%`).join(', ')} below ${COVERAGE_THRESHOLD}% of lines`);
    return false;
  }
  console.log(`coverage: PASS: ${COVERAGE_GATED.join(', ')} each >= ${COVERAGE_THRESHOLD}% of lines`);
  return true;
}
