import type { CommandCheckSpec, FileCheckSpec, ProcessCheckSpec, SysctlCheckSpec } from '../../templates/checks.js';
import { CheckFailed, compileRegex, excerpt, fail, pass, type CheckContext, type CheckVerdict } from './context.js';

/** The value at `$.a.b[0]` of a JSON value, or undefined. */
export function jsonPathValue(value: unknown, path: string): unknown {
  let current = value;
  for (const [, key, index] of path.slice(1).matchAll(/\.([A-Za-z0-9_-]+)|\[(\d+)\]/g)) {
    if (current === null || typeof current !== 'object') return undefined;
    current = key !== undefined ? (current as Record<string, unknown>)[key] : (current as unknown[])[Number(index)];
  }
  return current;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}

export async function commandCheck(spec: CommandCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const argv = typeof spec.run === 'string' ? ['/bin/sh', '-c', spec.run] : spec.run;
  const out = await ctx.run(spec.device, argv, spec.context ?? 'net', timeoutMs);
  const wantExit = spec.exit_code ?? 0;
  if (out.timedOut) return fail(`timed out after ${timeoutMs / 1000} s`);
  if (out.exitCode !== wantExit) return fail(`exited ${out.exitCode}, expected ${wantExit}${out.stderr.trim() ? `: ${excerpt(out.stderr)}` : ''}`);
  if (spec.expect_stdout !== undefined && !out.stdout.includes(spec.expect_stdout))
    return fail(`output does not contain ${JSON.stringify(spec.expect_stdout)}: ${excerpt(out.stdout)}`);
  if (spec.stdout_regex !== undefined && !compileRegex(spec.stdout_regex).test(out.stdout))
    return fail(`output does not match /${spec.stdout_regex}/: ${excerpt(out.stdout)}`);
  if (spec.stdout_not_regex !== undefined && compileRegex(spec.stdout_not_regex).test(out.stdout)) return fail(`output matches /${spec.stdout_not_regex}/`);
  if (spec.stdout_equals !== undefined && out.stdout.trimEnd() !== spec.stdout_equals.trimEnd())
    return fail(`output is ${JSON.stringify(excerpt(out.stdout))}, expected ${JSON.stringify(spec.stdout_equals)}`);
  if (spec.json_path !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(out.stdout);
    } catch {
      return fail('output is not JSON');
    }
    const actual = jsonPathValue(parsed, spec.json_path);
    if (!deepEqual(actual, spec.json_equals))
      return fail(`${spec.json_path} is ${JSON.stringify(actual) ?? 'missing'}, expected ${JSON.stringify(spec.json_equals)}`);
  }
  return pass(`exited ${out.exitCode} with the expected output`);
}

const MAX_FILE_READ = 1024 * 1024;

export async function fileCheck(spec: FileCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const stat = await ctx.run(spec.device, ['/usr/bin/stat', '-L', '-c', '%F|%a', '--', spec.path], 'mount', timeoutMs);
  const exists = stat.exitCode === 0;
  if ((spec.state ?? 'present') === 'absent') return exists ? fail(`${spec.path} exists`) : pass(`${spec.path} does not exist`);
  if (!exists) return fail(`${spec.path} does not exist`);
  const [kind = '', mode = ''] = stat.stdout.trim().split('|');
  if (spec.mode !== undefined && Number.parseInt(mode, 8) !== Number.parseInt(spec.mode, 8))
    return fail(`${spec.path} has mode ${mode.padStart(4, '0')}, expected ${spec.mode}`);
  if (spec.owner !== undefined) {
    // Owner names as the device sees them: the learner's user namespace maps its root to "root".
    const owner = await ctx.run(spec.device, ['/usr/bin/stat', '-L', '-c', '%U', '--', spec.path], 'learner', timeoutMs);
    if (owner.stdout.trim() !== spec.owner) return fail(`${spec.path} is owned by ${owner.stdout.trim() || 'unknown'}, expected ${spec.owner}`);
  }
  const needsContent = spec.regex !== undefined || spec.not_regex !== undefined;
  if ((needsContent || spec.sha256 !== undefined) && kind !== 'regular file' && kind !== 'regular empty file')
    return fail(`${spec.path} is a ${kind}, not a regular file`);
  if (spec.sha256 !== undefined) {
    const sum = await ctx.run(spec.device, ['/usr/bin/sha256sum', '--', spec.path], 'mount', timeoutMs);
    const digest = sum.stdout.split(/\s/)[0] ?? '';
    if (digest !== spec.sha256) return fail(`${spec.path} has SHA-256 ${digest || 'unreadable'}, expected ${spec.sha256}`);
  }
  if (needsContent) {
    const content = await ctx.run(spec.device, ['/usr/bin/head', '-c', String(MAX_FILE_READ), '--', spec.path], 'mount', timeoutMs);
    if (content.exitCode !== 0) throw new CheckFailed(`cannot read ${spec.path}: ${excerpt(content.stderr)}`);
    if (spec.regex !== undefined && !compileRegex(spec.regex).test(content.stdout)) return fail(`${spec.path} does not match /${spec.regex}/`);
    if (spec.not_regex !== undefined && compileRegex(spec.not_regex).test(content.stdout)) return fail(`${spec.path} matches /${spec.not_regex}/`);
  }
  return pass(`${spec.path} is as expected`);
}

interface ProcessEntry {
  readonly pid: number;
  readonly comm: string;
  readonly args: string;
}

export function parsePs(text: string): ProcessEntry[] {
  const out: ProcessEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\S+)\s*(.*)$/.exec(line);
    if (m) out.push({ pid: Number(m[1]), comm: m[2]!, args: m[3] ?? '' });
  }
  return out;
}

export async function processCheck(spec: ProcessCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  // The device's own PID namespace, read by the host's ps (from the read-only /usr the device
  // shares). The learner context is the one that enters the PID namespace, which ps needs for
  // /proc/self; the learner cannot write /usr, /etc's loader files or the environment.
  const ps = await ctx.run(spec.device, ['/usr/bin/ps', '-e', '-ww', '-o', 'pid=', '-o', 'comm=', '-o', 'args='], 'learner', timeoutMs);
  if (ps.exitCode !== 0) throw new CheckFailed(`ps exited ${ps.exitCode}: ${excerpt(ps.stderr)}`);
  const re = spec.cmdline_regex !== undefined ? compileRegex(spec.cmdline_regex) : undefined;
  const matches = parsePs(ps.stdout).filter((p) => (spec.name === undefined || p.comm === spec.name) && (re === undefined || re.test(p.args)));
  const what = [spec.name !== undefined ? `named ${spec.name}` : '', re ? `with command line /${spec.cmdline_regex}/` : ''].filter(Boolean).join(' ');
  if ((spec.state ?? 'running') === 'absent')
    return matches.length === 0 ? pass(`no process ${what}`) : fail(`process ${what} is running (pid ${matches.map((m) => m.pid).join(', ')})`);
  return matches.length > 0 ? pass(`process ${what} is running (pid ${matches.map((m) => m.pid).join(', ')})`) : fail(`no process ${what} is running`);
}

export async function sysctlCheck(spec: SysctlCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const out = await ctx.run(spec.device, ['/usr/sbin/sysctl', '-n', spec.key], 'net', timeoutMs);
  if (out.exitCode !== 0) return fail(`${spec.key} cannot be read: ${excerpt(out.stderr)}`);
  const norm = (s: string) => s.trim().split(/\s+/).join(' ');
  const actual = norm(out.stdout);
  return actual === norm(spec.equals) ? pass(`${spec.key} = ${actual}`) : fail(`${spec.key} = ${actual}, expected ${norm(spec.equals)}`);
}
