import { chmod, chown, lstat, mkdir, open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname } from 'node:path';
import { LabRuntimeError } from '../errors.js';
import { isWritableDevicePath, normaliseDevicePath } from '../spec.js';
import type { FileSpec } from '../types.js';

/**
 * The host-side tree of one device. The device's init pivots into `rootfs`, where /usr is the
 * host's (read-only), /etc is an overlay of the host's /etc with a private upper layer, and
 * /root, /home, /tmp, /var, /run are private directories owned by the learner's host uid
 * (so "root" in the lab owns them). Nothing else of the host is visible.
 */
export interface DeviceDirs {
  readonly base: string;
  readonly rootfs: string;
  readonly etcUpper: string;
  readonly etcWork: string;
  readonly fs: string;
  readonly frr: string;
}

export function deviceDirs(scenarioDir: string, device: string): DeviceDirs {
  const base = `${scenarioDir}/${device}`;
  return {
    base,
    rootfs: `${base}/rootfs`,
    etcUpper: `${base}/etc-upper`,
    etcWork: `${base}/etc-work`,
    fs: `${base}/fs`,
    frr: `${base}/frr`,
  };
}

const PRIVATE_DIRS: ReadonlyArray<readonly [string, number]> = [
  ['root', 0o700],
  ['home', 0o755],
  ['tmp', 0o1777],
  ['var', 0o755],
  ['var/tmp', 0o1777],
  ['var/log', 0o755],
  ['var/lib', 0o755],
  ['run', 0o755],
];

export async function prepareDeviceTree(dirs: DeviceDirs, learnerUid: number, router: boolean): Promise<void> {
  await mkdir(dirs.rootfs, { recursive: true });
  await mkdir(dirs.etcUpper, { recursive: true });
  await mkdir(dirs.etcWork, { recursive: true });
  for (const [rel, mode] of PRIVATE_DIRS) {
    const p = `${dirs.fs}/${rel}`;
    await mkdir(p, { recursive: true });
    await chmod(p, mode);
    await chown(p, learnerUid, learnerUid);
  }
  if (router) {
    // FRR daemons drop to the frr user, so their pid files and sockets need an frr-owned dir;
    // the init binds it at /run/frr so the learner's vtysh finds the sockets where it looks.
    await mkdir(dirs.frr, { recursive: true });
    await mkdir(`${dirs.fs}/run/frr`, { recursive: true });
  }
}

/** Host path of a device path, for placing template files before the device starts. */
export function hostPathFor(dirs: DeviceDirs, devicePath: string): string {
  const path = normaliseDevicePath(devicePath);
  if (!path || !isWritableDevicePath(path)) {
    throw new LabRuntimeError('lab_path_refused', `device path ${devicePath} is outside the writable roots`);
  }
  if (path.startsWith('/etc/')) return `${dirs.etcUpper}/${path.slice('/etc/'.length)}`;
  return `${dirs.fs}${path}`;
}

/** Creates the directories of `target` below `root`, refusing any existing symlink on the way. */
async function mkdirNoFollow(root: string, target: string, uid: number): Promise<void> {
  const rel = target.slice(root.length).split('/').filter((p) => p !== '');
  let cur = root;
  for (const part of rel) {
    cur = `${cur}/${part}`;
    const st = await lstat(cur).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new LabRuntimeError('lab_path_refused', `symlink on path ${cur}`);
    if (st && !st.isDirectory()) throw new LabRuntimeError('lab_path_refused', `not a directory: ${cur}`);
    if (!st) {
      await mkdir(cur, { mode: 0o755 });
      await chown(cur, uid, uid);
    }
  }
}

/** Writes one template file into a device tree, owned by the lab's root (the learner uid). */
export async function placeFile(dirs: DeviceDirs, file: FileSpec, learnerUid: number): Promise<void> {
  const target = hostPathFor(dirs, file.path);
  const root = target.startsWith(`${dirs.etcUpper}/`) ? dirs.etcUpper : dirs.fs;
  await mkdirNoFollow(root, dirname(target), learnerUid);
  const handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(file.content);
    await handle.chown(learnerUid, learnerUid);
    await handle.chmod(file.mode ?? 0o644);
  } finally {
    await handle.close();
  }
}
