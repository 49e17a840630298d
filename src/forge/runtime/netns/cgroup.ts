import { mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import type { ResourceLimits } from '../types.js';

/**
 * Per-scenario cgroup (v1) in the memory, pids, cpu and freezer hierarchies. Every process of
 * a lab (device inits, learner shells, FRR, trusted checks) is attached before it execs, so
 * the limits bound the whole lab and teardown can freeze and kill everything at once.
 */
export const CGROUP_ROOT = '/sys/fs/cgroup';
export const CGROUP_PARENT = 'frostgate';
const CONTROLLERS = ['memory', 'pids', 'cpu', 'freezer'] as const;

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
 * Kills every process in the cgroup: freeze (a fork bomb cannot outrun the kill), SIGKILL
 * all, thaw so the kills are delivered, repeat until empty, then remove the directories.
 */
export async function destroyCgroup(name: string): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids = await cgroupPids(name);
    if (pids.length === 0) break;
    await setFrozen(name, true);
    for (const pid of await cgroupPids(name)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await setFrozen(name, false);
    await new Promise((r) => setTimeout(r, round < 5 ? 5 : 20));
  }
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
