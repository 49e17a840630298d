// CLI start-up: `frostgate --help`, `lab exec` and `lab ls` from the compiled dist/ (what the bin
// runs) against the same commands from src/ through tsx and a bare `node -e 0`, interleaved
// round by round so a loaded machine weighs on all of them alike; `lab up`'s peak RSS (GNU time).
// Prints the load average with the figures. Targets (issue 24, quiet machine): --help < 300 ms,
// lab exec < 300 ms plus the command, lab up peak RSS < 200 MB.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsLabRuntime } from '../src/forge/runtime/netns/driver.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/frostgate.mjs');
const ROUNDS = Number(process.env.FG_BENCH_ROUNDS ?? 7);

function timed(argv: string[], env: NodeJS.ProcessEnv): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(0, 500)}`);
  // A source edited while the bench runs makes dist/ stale: its figures would be tsx's.
  if (env.FG_CLI_FROM_SOURCE !== '1' && r.stderr.toString().includes('running from source')) throw new Error('dist/ went stale during the bench');
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Wall time and peak RSS (KB) of one command, from GNU time. */
function peak(argv: string[], env: NodeJS.ProcessEnv): { ms: number; kb: number; stdout: string } {
  const r = spawnSync('/usr/bin/time', ['-f', 'FGTIME %e %M', ...argv], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 800)}`);
  const m = /FGTIME ([\d.]+) (\d+)/.exec(r.stderr);
  return { ms: Number(m![1]) * 1000, kb: Number(m![2]), stdout: r.stdout };
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const fmt = (xs: number[]) => `p50 ${q(xs, 0.5).toFixed(0)} ms  p90 ${q(xs, 0.9).toFixed(0)} ms`;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export async function run(): Promise<void> {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'fg-bench-cli-'));
  const env = { ...process.env, FG_DATA_DIR: dataDir, FG_STORAGE_DIR: path.join(dataDir, 'storage'), FG_LOG_LEVEL: 'silent' };
  const fromSource = { ...env, FG_CLI_FROM_SOURCE: '1' };
  const template = path.join(ROOT, 'templates/netplus-two-subnets.yaml');
  try {
    console.log(`load average at start: ${load()} (2 cores)`);
    // The first lab up creates and migrates the embedded database; the measured one is the second.
    const first = peak([process.execPath, BIN, 'lab', 'up', template, '--json'], env);
    const up = peak([process.execPath, BIN, 'lab', 'up', template, '--json'], env);
    const scenario = (JSON.parse(up.stdout) as { scenario_id: string }).scenario_id;
    console.log(`lab up (first, creates the database): ${first.ms.toFixed(0)} ms, peak RSS ${(first.kb / 1024).toFixed(0)} MiB`);
    console.log(`lab up:                              ${up.ms.toFixed(0)} ms, peak RSS ${(up.kb / 1024).toFixed(0)} MiB  (target < 200 MiB)`);
    const series: Record<string, number[]> = {
      'node -e 0': [],
      'help dist': [],
      'help src (tsx)': [],
      'exec true dist': [],
      'exec true src (tsx)': [],
      'ls dist': [],
    };
    for (let i = 0; i < ROUNDS; i++) {
      series['node -e 0']!.push(timed([process.execPath, '-e', '0'], env));
      series['help dist']!.push(timed([process.execPath, BIN, '--help'], env));
      series['help src (tsx)']!.push(timed([process.execPath, BIN, '--help'], fromSource));
      series['exec true dist']!.push(timed([process.execPath, BIN, 'lab', 'exec', scenario, 'h1', '--', 'true'], env));
      series['exec true src (tsx)']!.push(timed([process.execPath, BIN, 'lab', 'exec', scenario, 'h1', '--', 'true'], fromSource));
      if (i < 3) series['ls dist']!.push(timed([process.execPath, BIN, 'lab', 'ls'], env));
    }
    const base = q(series['node -e 0']!, 0.5);
    for (const [name, xs] of Object.entries(series))
      console.log(`${name.padEnd(20)} ${fmt(xs)}  (${(q(xs, 0.5) / base).toFixed(1)}x node -e 0, n=${xs.length})`);
    console.log(`load average at end: ${load()}`);
  } finally {
    await new NetnsLabRuntime({ stateDir: path.join(dataDir, 'labs') }).reconcile(new Set());
    rmSync(dataDir, { recursive: true, force: true });
  }
}
