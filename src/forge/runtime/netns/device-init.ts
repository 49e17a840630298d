import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { inCgroupArgv } from './cgroup.js';
import { DEVICE_INIT_SCRIPT } from './init-script.js';
import { SYSTEM_PATH } from './process.js';
import { sandboxed } from './sandbox.js';

export interface StartInitInput {
  readonly netns: string;
  readonly cgroup: string;
  readonly deviceDir: string;
  readonly hostname: string;
  readonly router: boolean;
  readonly timeoutMs: number;
}

/**
 * Starts the device's init: (cgroup) -> nsenter into the device netns -> unshare new PID,
 * mount, UTS and IPC namespaces -> bash running DEVICE_INIT_SCRIPT. Resolves with the host
 * pid of the init (PID 1 inside) once it printed `ready`. Detached: the lab outlives a
 * restart of this process, and reconcile removes it if nobody claims it.
 */
export function startDeviceInit(input: StartInitInput): Promise<number> {
  const argv = inCgroupArgv(input.cgroup, [
    'nsenter',
    `--net=/run/netns/${input.netns}`,
    'unshare',
    '--pid',
    '--fork',
    '--mount',
    '--uts',
    '--ipc',
    '--propagation',
    'private',
    '/bin/bash',
    '-c',
    DEVICE_INIT_SCRIPT,
    'fg-init',
    input.deviceDir,
    input.hostname,
    input.router ? '1' : '0',
    ...sandboxed('init', []),
  ]);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: SYSTEM_PATH, LANG: 'C.UTF-8' },
    });
    let out = '';
    let err = '';
    let done = false;
    const fail = (why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      reject(new Error(`device init in ${input.netns}: ${why}: ${err.trim().slice(0, 2000)}`));
    };
    const timer = setTimeout(() => fail('timed out'), input.timeoutMs);
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (done || !out.includes('ready\n') || child.pid === undefined) return;
      done = true;
      clearTimeout(timer);
      const pid = child.pid;
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').then(
        (text) => {
          const init = Number(text.trim().split(/\s+/)[0]);
          if (Number.isInteger(init) && init > 0) resolve(init);
          else reject(new Error(`device init in ${input.netns}: no init process`));
        },
        (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))),
      );
    });
    child.on('error', (e) => fail(e.message));
    child.on('exit', (code) => fail(`exited ${code}`));
  });
}
