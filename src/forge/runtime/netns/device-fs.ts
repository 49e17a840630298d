import { chmod, chown, lstat, mkdir, open, rm, symlink, writeFile } from 'node:fs/promises';
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

/** `frrDir`: the router's FRR dir (LabNames.frrDir), outside the device tree. */
export function deviceDirs(scenarioDir: string, device: string, frrDir: string): DeviceDirs {
  const base = `${scenarioDir}/${device}`;
  return {
    base,
    rootfs: `${base}/rootfs`,
    etcUpper: `${base}/etc-upper`,
    etcWork: `${base}/etc-work`,
    fs: `${base}/fs`,
    frr: frrDir,
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

/** Mount points and links of the root the init pivots into (owned by host root, read-only to the lab). */
const ROOT_DIRS = ['usr', 'etc', 'root', 'home', 'tmp', 'var', 'run', 'proc', 'sys', 'dev', 'dev/pts', 'dev/shm', '.oldroot'];
const ROOT_LINKS: ReadonlyArray<readonly [string, string]> = [
  ['bin', 'usr/bin'],
  ['lib', 'usr/lib'],
  ['lib64', 'usr/lib64'],
  ['sbin', 'usr/sbin'],
  ['dev/ptmx', 'pts/ptmx'],
  ['dev/fd', '/proc/self/fd'],
];
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** fstab field escaping (spaces, tabs, newlines and backslashes as octal). */
function fstabField(text: string): string {
  return text.replace(/[\s\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * The device's mount table, in order, for the init's `mount -a`: the rootfs bound onto itself
 * (pivot_root needs a mount point), the host's /usr read-only, /etc as an overlay with a
 * private upper layer, the private directories, FRR's socket dir on routers, then proc, sysfs
 * and a minimal /dev (host device nodes bound onto placeholders, a private devpts).
 */
export function deviceFstab(dirs: DeviceDirs, router: boolean): string {
  const r = dirs.rootfs;
  const rows: string[][] = [
    [r, r, 'none', 'bind'],
    ['/usr', `${r}/usr`, 'none', 'rbind,ro'],
    ['overlay', `${r}/etc`, 'overlay', `lowerdir=/etc,upperdir=${dirs.etcUpper},workdir=${dirs.etcWork}`],
    ...['root', 'home', 'tmp', 'var', 'run'].map((x) => [`${dirs.fs}/${x}`, `${r}/${x}`, 'none', 'bind']),
    ...(router ? [[dirs.frr, `${r}/run/frr`, 'none', 'bind']] : []),
    ['proc', `${r}/proc`, 'proc', 'nosuid,nodev,noexec'],
    ['sysfs', `${r}/sys`, 'sysfs', 'ro,nosuid,nodev,noexec'],
    ...DEV_NODES.map((n) => [`/dev/${n}`, `${r}/dev/${n}`, 'none', 'bind']),
    ['devpts', `${r}/dev/pts`, 'devpts', 'newinstance,ptmxmode=0666,mode=620,nosuid,noexec'],
    ['tmpfs', `${r}/dev/shm`, 'tmpfs', 'mode=1777,size=16m,nosuid,nodev'],
  ];
  return rows.map((row) => `${row.map(fstabField).join(' ')} 0 0`).join('\n') + '\n';
}

async function symlinkFresh(target: string, path: string): Promise<void> {
  await rm(path, { force: true });
  await symlink(target, path);
}

export async function prepareDeviceTree(dirs: DeviceDirs, learnerUid: number, router: boolean): Promise<void> {
  await mkdir(dirs.etcUpper, { recursive: true });
  await mkdir(dirs.etcWork, { recursive: true });
  for (const d of ROOT_DIRS) await mkdir(`${dirs.rootfs}/${d}`, { recursive: true });
  for (const [path, target] of ROOT_LINKS) await symlinkFresh(target, `${dirs.rootfs}/${path}`);
  for (const n of DEV_NODES) await writeFile(`${dirs.rootfs}/dev/${n}`, '', { mode: 0o644 });
  for (const [rel, mode] of PRIVATE_DIRS) {
    const p = `${dirs.fs}/${rel}`;
    await mkdir(p, { recursive: true });
    await chmod(p, mode);
    await chown(p, learnerUid, learnerUid);
  }
  // /var/run is /run, as on the host (created before the learner owns anything inside).
  await symlinkFresh('../run', `${dirs.fs}/var/run`);
  if (router) {
    // FRR daemons drop to the frr user, so their pid files and sockets need an frr-owned dir;
    // the init binds it at /run/frr so the learner's vtysh finds the sockets where it looks.
    await mkdir(dirs.frr, { recursive: true });
    await mkdir(`${dirs.fs}/run/frr`, { recursive: true });
    // The host's /etc/frr/vtysh.conf is frr-group only; the learner's vtysh reads this one.
    await mkdir(`${dirs.etcUpper}/frr`, { recursive: true, mode: 0o755 });
    await writeFile(`${dirs.etcUpper}/frr/vtysh.conf`, 'service integrated-vtysh-config\n', { mode: 0o644 });
  }
  await writeFile(`${dirs.base}/fstab`, deviceFstab(dirs, router), { mode: 0o600 });
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
  const rel = target
    .slice(root.length)
    .split('/')
    .filter((p) => p !== '');
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
