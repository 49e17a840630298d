import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { NetnsLabRuntime, type NetnsRuntimeOptions } from '../../../src/forge/runtime/netns/driver.js';
import { FRR_RUN_DIR, USERNS_DIR } from '../../../src/forge/runtime/netns/naming.js';

/** A runtime with its own state dir (so its instance tag is unique), removed after the test. */
export function makeRuntime(t: TestContext, opts: Partial<NetnsRuntimeOptions> = {}): NetnsLabRuntime {
  const stateDir = mkdtempSync(join(tmpdir(), 'fg-labs-'));
  const rt = new NetnsLabRuntime({ stateDir, ...opts });
  t.after(async () => {
    await rt.reconcile(new Set());
    rmSync(stateDir, { recursive: true, force: true });
  });
  return rt;
}

export function uniqueId(label: string): string {
  return `scn_${label}_${randomBytes(6).toString('hex')}`;
}

/** A random /24 inside 10.(200..249).x.0 so concurrent tests rarely share subnets. */
export function subnet(): (host: number) => string {
  const b = 200 + (randomBytes(1)[0]! % 50);
  const c = randomBytes(1)[0]!;
  const base = `10.${b}.${c}`;
  return (host: number) => (host === 0 ? `${base}.0/24` : `${base}.${host}`);
}

/** Two distinct random /24s, `lan-a` and `lan-b`, with the networks entry of a lab spec. */
export function twoSubnets(): { a: (host: number) => string; b: (host: number) => string; networks: Array<{ name: string; cidr: string }> } {
  const a = subnet();
  let b = subnet();
  while (b(0) === a(0)) b = subnet();
  return {
    a,
    b,
    networks: [
      { name: 'lan-a', cidr: a(0) },
      { name: 'lan-b', cidr: b(0) },
    ],
  };
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/** Everything on the host that still carries the lab's prefix or hex; empty when nothing leaked. */
export function leftovers(rt: NetnsLabRuntime, scenarioId: string): string[] {
  const names = rt.namesFor(scenarioId);
  const found: string[] = [];
  for (const ns of readdirSync('/run/netns')) if (ns.startsWith(names.prefix)) found.push(`netns ${ns}`);
  const userns = existsSync(USERNS_DIR) ? readdirSync(USERNS_DIR) : [];
  for (const f of userns) if (f.startsWith(names.prefix)) found.push(`userns ${f}`);
  const frr = existsSync(FRR_RUN_DIR) ? readdirSync(FRR_RUN_DIR) : [];
  for (const f of frr) if (f.startsWith(names.prefix)) found.push(`frr dir ${f}`);
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  if (mountinfo.includes(names.prefix)) found.push('mount');
  if (mountinfo.includes(`${join(rt.stateDir, names.hex)}/`)) found.push('device storage mount');
  if (sh('ip', ['-o', 'link']).includes(names.hex)) found.push('host link');
  if (sh('nft', ['list', 'tables']).includes(names.hex)) found.push('host nft table');
  for (const c of ['memory', 'pids', 'cpu', 'freezer', 'cpuacct']) {
    if (existsSync(`/sys/fs/cgroup/${c}/frostgate/${names.cgroupName()}`)) found.push(`cgroup ${c}`);
  }
  const dir = join(rt.stateDir, names.hex);
  if (existsSync(dir)) found.push(`dir ${dir}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    // A zombie has released everything (memory, namespaces, cgroup, mounts) and only waits for
    // its parent to collect the exit status. Orphans of a SIGKILLed provisioner are handed to
    // the host's PID 1, which on this VM (process_api) does not reap them.
    if (/^State:\s+Z/m.test(statusOf(pid))) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes(dir) || cmd.includes(names.prefix)) found.push(`process ${pid} ${cmd.replace(/\0/g, ' ').slice(0, 80)}`);
    // Anything the learner started runs as the scenario's host uid, whatever its command line.
    else if (new RegExp(`^Uid:\\s+${names.learnerUid()}\\s`, 'm').test(statusOf(pid)))
      found.push(
        `learner process ${pid} ${cmd.replace(/\0/g, ' ').slice(0, 80)} ${statusOf(pid)
          .split('\n')
          .filter((l) => /^(State|PPid|Name)/.test(l))
          .join(' ')}`,
      );
  }
  return found;
}

function statusOf(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return '';
  }
}

/** Polls `probe` until it returns a value or the deadline passes (then throws `what`). */
export async function waitFor<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
