import { mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import type { ResourceLimits } from '../types.js';

/**
 * Per-scenario cgroup (v1) in the memory, pids, cpu, freezer (and cpuacct) hierarchies. Every process of
 * a lab (device inits, learner shells, FRR, trusted checks) is attached before it execs, so
 * the limits bound the whole lab and teardown can freeze and kill everything at once.
 */
export const CGROUP_ROOT = '/sys/fs/cgroup';
export const CGROUP_PARENT = 'frostgate';
/** cpuacct only accounts (CPU time per lab, e.g. for the bench); it limits nothing. */
const CONTROLLERS = ['memory', 'pids', 'cpu', 'freezer', 'cpuacct'] as const;

export function cgroupDirs(name: string): string[] {
  return CONTROLLERS.map((c) => `${CGROUP_ROOT}/${c}/${CGROUP_PARENT}/${name}`);
}

export async function createCgroup(name: string, limits: ResourceLimits): Promise<void> {
  for (const dir of cgroupDirs(name)) await mkdir(dir, { recursive: true });
  const [memory, pids, cpu] = cgroupDirs(name);
  await writeFile(`${memory}/memory.limit_in_bytes`, String(limits.memoryBytes));
  await writeFile(`${pids}/pids.max`, String(limits.pids));
  await writeFile(`${cpu}/cpu.shares`, String(limits.cpuShares));
}

/**
 * A `/bin/sh -c` prefix that moves the shell into the scenario's cgroups, then execs argv:
 * children forked after that are born inside the limits (no race with an attach from outside).
 */
export function inCgroupArgv(name: string, argv: readonly string[]): string[] {
  const procs = cgroupDirs(name).map((d) => `${d}/cgroup.procs`);
  const script = `for f in ${procs.join(' ')}; do echo $$ > "$f" || exit 125; done; exec "$@"`;
  return ['/bin/sh', '-c', script, 'fg-cgroup', ...argv];
}

export async function cgroupPids(name: string): Promise<number[]> {
  const pidsDir = cgroupDirs(name)[1]!;
  const text = await readFile(`${pidsDir}/cgroup.procs`, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
}

async function setFrozen(name: string, frozen: boolean): Promise<void> {
  const freezer = cgroupDirs(name)[3]!;
  await writeFile(`${freezer}/freezer.state`, frozen ? 'FROZEN' : 'THAWED').catch(() => undefined);
}

/**
 * Kills every process in the cgroup but `spare`: freeze (a fork bomb cannot outrun the kill),
 * SIGKILL, thaw so the kills are delivered, repeat until only spared processes remain.
 * Sparing the device inits lets them reap the orphans (a learner's background jobs) that
 * would otherwise be handed to the host's PID 1.
 */
export async function killCgroupProcesses(name: string, spare: ReadonlySet<number> = new Set()): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const pids = (await cgroupPids(name)).filter((p) => !spare.has(p));
    if (pids.length === 0) return;
    await setFrozen(name, true);
    for (const pid of await cgroupPids(name)) {
      if (spare.has(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await setFrozen(name, false);
    await new Promise((r) => setTimeout(r, round < 5 ? 5 : 20));
  }
}

/** Kills every process in the cgroup (see killCgroupProcesses), then removes its directories. */
export async function destroyCgroup(name: string): Promise<void> {
  await killCgroupProcesses(name);
  for (const dir of cgroupDirs(name)) {
    for (let i = 0; i < 50; i++) {
      try {
        await rmdir(dir);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
        // EBUSY while the last killed tasks are still exiting.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }
}

/** Names of scenario cgroups under the FrostGate parent that start with `tag-`. */
export async function listCgroups(tag: string): Promise<string[]> {
  const names = new Set<string>();
  for (const c of CONTROLLERS) {
    const entries = await readdir(`${CGROUP_ROOT}/${c}/${CGROUP_PARENT}`).catch(() => [] as string[]);
    for (const e of entries) if (e.startsWith(`${tag}-`)) names.add(e);
  }
  return [...names];
}
