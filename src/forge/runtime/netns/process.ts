import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import type { ExecResult } from '../types.js';

export interface RunOptions {
  readonly stdin?: string | Uint8Array;
  readonly timeoutMs?: number;
  readonly env?: Readonly<Record<string, string>>;
  /** Sees stdout as it arrives (the full output is still collected). */
  readonly onStdout?: (chunk: string) => void;
}

const OUTPUT_LIMIT = 4 * 1024 * 1024;
/** After the process exits, wait this long for pipes held open by daemons it left behind. */
const DRAIN_AFTER_EXIT_MS = 100;

/** The PATH trusted commands run with: the host's system directories only. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const out: number[] = [];
  for (const t of tasks) {
    const text = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const c of text.split(/\s+/)) if (c !== '') out.push(Number(c));
  }
  return out;
}

export async function parentOf(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
  return Number.isInteger(ppid) && ppid > 1 ? ppid : undefined;
}

/** SIGKILLs a process and every descendant (children first collected, so none escapes re-parenting to us). */
export async function killTree(pid: number): Promise<void> {
  const seen = new Set<number>();
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      process.kill(p, 'SIGSTOP');
    } catch {
      continue;
    }
    queue.push(...(await childrenOf(p)));
  }
  for (const p of seen) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Runs argv (no shell), collecting output; on timeout kills the whole process tree. */
export function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty argv');
  const startedAt = new Date().toISOString();
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      // A clean environment; only the docker CLI's daemon address passes (the docker driver's daemon).
      env: { PATH: SYSTEM_PATH, LANG: 'C.UTF-8', ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}), ...opts.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    let exitCode: number | undefined;
    let settled = false;
    let closed = false;
    child.stdout.on('data', (b: Buffer) => {
      opts.onStdout?.(b.toString('utf8'));
      if (outLen < OUTPUT_LIMIT) out.push(b);
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < OUTPUT_LIMIT) err.push(b);
      errLen += b.length;
    });
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            if (child.pid !== undefined) void killTree(child.pid);
          }, opts.timeoutMs);
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        exitCode: timedOut ? 124 : code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        startedAt,
        endedAt: new Date().toISOString(),
      });
    };
    child.on('error', (e) => {
      err.push(Buffer.from(String(e.message)));
      finish(127);
    });
    child.on('exit', (code, signal) => {
      exitCode = code ?? 128 + (signal ? signalNumber(signal) : 0);
      if (closed) finish(exitCode);
      else setTimeout(() => finish(exitCode!), DRAIN_AFTER_EXIT_MS).unref();
    });
    child.on('close', () => {
      closed = true;
      if (exitCode !== undefined) finish(exitCode);
    });
    child.stdin.on('error', () => undefined);
    if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
    else child.stdin.end();
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
  return table[signal] ?? 0;
}

/** Like runCommand but throws with stderr when the command fails. */
export async function mustRun(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
  const res = await runCommand(argv, opts);
  if (res.exitCode !== 0) {
    throw new Error(`${argv.slice(0, 4).join(' ')} exited ${res.exitCode}: ${res.stderr.trim().slice(0, 2000)}`);
  }
  return res;
}

/** Mount points of this process's mount namespace below `dir`, deepest first (for unmounting). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescape)
    .filter((p) => p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
