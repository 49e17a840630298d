import { chmod, chown, lstat, mkdir, open, rm, symlink, writeFile } from 'node:fs/promises';
import { constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { LabRuntimeError } from '../errors.js';
import { isWritableDevicePath, normaliseDevicePath } from '../spec.js';
import { writeDeviceEtc } from './device-etc.js';
import type { FileSpec } from '../types.js';

/**
 * The host-side tree of one device. `rw` is the device's own tmpfs (size = the template's
 * disk limit; its pages are charged to the lab's memory cgroup as the lab writes them), and
 * holds everything of the device: the root it pivots into (`rootfs`), its /etc (built from the
 * template, never the host's) and its private /root, /home, /tmp, /var, /run. A router's FRR
 * dir is a small tmpfs of its own under /run/frostgate/frr (the frr user reaches it whatever
 * the state dir's modes, and unix socket paths stay short). In the device, /usr is the host's (read-only) and nothing else of the host is
 * visible; every mount's source is that tmpfs, /usr or a kernel file system, so the mount
 * table names no host path.
 */
export interface DeviceDirs {
  readonly base: string;
  readonly rw: string;
  /** The device's own tools (busybox applet links), bound read-only at TOOLS_MOUNT. */
  readonly tools: string;
  readonly rootfs: string;
  readonly etc: string;
  readonly fs: string;
  /** A router's FRR dir (its own tmpfs). */
  readonly frr: string;
}

/** `frrDir`: the router's FRR dir (LabNames.frrDir), outside the device tree. */
export function deviceDirs(scenarioDir: string, device: string, frrDir: string): DeviceDirs {
  const base = `${scenarioDir}/${device}`;
  const rw = `${base}/rw`;
  return { base, rw, tools: `${rw}/tools`, rootfs: `${rw}/rootfs`, etc: `${rw}/etc`, fs: `${rw}/fs`, frr: frrDir };
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

/** Host directories hidden in every device by an empty read-only tmpfs: the C compiler's back end (no building of kernel exploits in a lab). */
const MASKED_USR_DIRS = ['/usr/lib/gcc', '/usr/libexec/gcc'].filter((d) => existsSync(d));

/**
 * Tools the tasks ask for that Debian's /usr ships only inside busybox (telnet, a DHCP client):
 * links in the device's own tools dir, bound read-only over /usr/local/sbin (first on root's
 * PATH, empty on Debian), so the host's /usr is never written. Absent busybox: no tools dir.
 */
const BUSYBOX = '/usr/bin/busybox';
export const TOOLS_MOUNT = '/usr/local/sbin';
export const BUSYBOX_TOOLS: readonly string[] = ['telnet', 'udhcpc'];
const HAS_TOOLS = existsSync(BUSYBOX) && existsSync(TOOLS_MOUNT);

/** fstab field escaping (spaces, tabs, newlines and backslashes as octal). */
function fstabField(text: string): string {
  return text.replace(/[\s\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

function fstab(rows: readonly string[][]): string {
  return rows.map((row) => `${row.map(fstabField).join(' ')} 0 0`).join('\n') + '\n';
}

/** Room for a router's FRR config, pid files, sockets and logs. */
const FRR_DIR_BYTES = 8 * 1024 * 1024;

/**
 * The devices' tmpfs (and the routers' FRR dirs), mounted on the host before their trees are
 * written. `nr_inodes` bounds the files as `size` bounds the bytes (one inode per 16 KiB, at
 * least 4096).
 */
export function storageFstab(devices: ReadonlyArray<{ readonly dirs: DeviceDirs; readonly router: boolean }>, diskBytes: number): string {
  const inodes = Math.max(4096, Math.floor(diskBytes / 16384));
  return fstab(
    devices.flatMap(({ dirs, router }) => [
      ['tmpfs', dirs.rw, 'tmpfs', `size=${diskBytes},nr_inodes=${inodes},mode=0755,nosuid,nodev`],
      ...(router ? [['tmpfs', dirs.frr, 'tmpfs', `size=${FRR_DIR_BYTES},nr_inodes=1024,mode=0755,nosuid,nodev,noexec`]] : []),
    ]),
  );
}

/**
 * The device's mount table, in order, for the init's `mount -a`: the rootfs bound onto itself
 * (pivot_root needs a mount point), the host's /usr read-only (compiler back end masked), the
 * device's own /etc (with the host's /etc/alternatives read-only, the links many commands go
 * through), the private directories, FRR's dir on routers, then proc, sysfs and a minimal
 * /dev (host device nodes bound onto placeholders, a private devpts).
 */
export function deviceFstab(dirs: DeviceDirs, router: boolean): string {
  const r = dirs.rootfs;
  return fstab([
    [r, r, 'none', 'bind'],
    ['/usr', `${r}/usr`, 'none', 'rbind,ro'],
    ...MASKED_USR_DIRS.map((d) => ['tmpfs', `${r}${d}`, 'tmpfs', 'ro,size=4k,mode=0755,nosuid,nodev']),
    ...(HAS_TOOLS ? [[dirs.tools, `${r}${TOOLS_MOUNT}`, 'none', 'bind,ro']] : []),
    [dirs.etc, `${r}/etc`, 'none', 'bind'],
    ...(existsSync('/etc/alternatives') ? [['/etc/alternatives', `${r}/etc/alternatives`, 'none', 'bind,ro']] : []),
    ...['root', 'home', 'tmp', 'var', 'run'].map((x) => [`${dirs.fs}/${x}`, `${r}/${x}`, 'none', 'bind']),
    ...(router ? [[dirs.frr, `${r}/run/frr`, 'none', 'bind']] : []),
    ['proc', `${r}/proc`, 'proc', 'nosuid,nodev,noexec'],
    ['sysfs', `${r}/sys`, 'sysfs', 'ro,nosuid,nodev,noexec'],
    ...DEV_NODES.map((n) => [`/dev/${n}`, `${r}/dev/${n}`, 'none', 'bind']),
    ['devpts', `${r}/dev/pts`, 'devpts', 'newinstance,ptmxmode=0666,mode=620,nosuid,noexec'],
    ['tmpfs', `${r}/dev/shm`, 'tmpfs', 'mode=1777,size=16m,nosuid,nodev'],
  ]);
}

async function symlinkFresh(target: string, path: string): Promise<void> {
  await rm(path, { force: true });
  await symlink(target, path);
}

/** Creates the device's mount points on the host (before its tmpfs are mounted). */
export async function prepareMountPoints(dirs: DeviceDirs, router: boolean): Promise<void> {
  await mkdir(dirs.rw, { recursive: true });
  if (router) await mkdir(dirs.frr, { recursive: true });
}

/** Writes the device's tree into its (mounted) tmpfs. */
export async function prepareDeviceTree(dirs: DeviceDirs, learnerUid: number, router: boolean, hostname: string): Promise<void> {
  for (const d of ROOT_DIRS) await mkdir(`${dirs.rootfs}/${d}`, { recursive: true });
  for (const d of MASKED_USR_DIRS) await mkdir(`${dirs.rootfs}${d}`, { recursive: true });
  for (const [path, target] of ROOT_LINKS) await symlinkFresh(target, `${dirs.rootfs}/${path}`);
  for (const n of DEV_NODES) await writeFile(`${dirs.rootfs}/dev/${n}`, '', { mode: 0o644 });
  if (HAS_TOOLS) {
    // Owned by host root like the rootfs: the learner uses the links, never changes them.
    await mkdir(dirs.tools, { recursive: true, mode: 0o755 });
    for (const tool of BUSYBOX_TOOLS) await symlinkFresh(BUSYBOX, `${dirs.tools}/${tool}`);
  }
  for (const [rel, mode] of PRIVATE_DIRS) {
    const p = `${dirs.fs}/${rel}`;
    await mkdir(p, { recursive: true });
    await chmod(p, mode);
    await chown(p, learnerUid, learnerUid);
  }
  // /var/run is /run, as on the host (created before the learner owns anything inside).
  await symlinkFresh('../run', `${dirs.fs}/var/run`);
  await writeDeviceEtc(dirs.etc, hostname, router);
  // The device's root owns its /etc, so editors that write a new file and rename it (sed -i) work.
  await chown(dirs.etc, learnerUid, learnerUid);
  if (router) {
    // FRR daemons drop to the frr user, so their pid files and sockets need an frr-owned dir
    // (startFrr chowns it); the init binds it at /run/frr so the learner's vtysh finds the
    // sockets where it looks.
    await mkdir(`${dirs.fs}/run/frr`, { recursive: true });
  }
  await writeFile(`${dirs.base}/fstab`, deviceFstab(dirs, router), { mode: 0o600 });
}

/** Host path of a device path, for placing template files before the device starts. */
export function hostPathFor(dirs: DeviceDirs, devicePath: string): string {
  const path = normaliseDevicePath(devicePath);
  if (!path || !isWritableDevicePath(path)) {
    throw new LabRuntimeError('lab_path_refused', `device path ${devicePath} is outside the writable roots`);
  }
  if (path.startsWith('/etc/')) return `${dirs.etc}/${path.slice('/etc/'.length)}`;
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
  const root = target.startsWith(`${dirs.etc}/`) ? dirs.etc : dirs.fs;
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
