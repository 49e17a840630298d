import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, mkdtemp, readFile, readlink, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mustRun, runCommand } from '../netns/process.js';

/**
 * The lab base image of the docker driver, built locally (no registry): a rootfs of the host's
 * own binaries that labs use (shell, coreutils, iproute2, nftables, ping, socat, ps, FRR) and
 * the shared libraries `ldd` finds for them, tarred and loaded with `docker import`. The tag
 * carries a hash of the file list and the binaries' sizes and mtimes, so a host upgrade
 * builds a new image.
 */
export const LAB_IMAGE_REPO = 'frostgate/lab-base';

const BINARIES = [
  ...[
    'bash',
    'dash',
    'ls',
    'cat',
    'echo',
    'id',
    'hostname',
    'sleep',
    'touch',
    'mkdir',
    'rm',
    'cp',
    'mv',
    'chmod',
    'chown',
    'head',
    'tail',
    'wc',
    'base64',
    'tr',
    'cut',
    'grep',
    'sed',
  ].map((b) => `/usr/bin/${b}`),
  ...['timeout', 'seq', 'env', 'true', 'false', 'ps', 'ping', 'ip', 'socat', 'readlink', 'stat', 'ln', 'sort', 'uniq', 'kill', 'vtysh', 'less', 'nano'].map(
    (b) => `/usr/bin/${b}`,
  ),
  '/usr/sbin/nft',
  '/usr/sbin/sysctl',
  ...['zebra', 'staticd', 'ospfd', 'bgpd', 'ripd', 'isisd', 'ospf6d'].map((d) => `/usr/lib/frr/${d}`),
];
const ETC_FILES = [
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
  '/etc/services',
  '/etc/protocols',
  '/etc/ethertypes',
  '/etc/pam.d/frr',
  '/etc/pam.d/other',
  '/etc/pam.d/common-auth',
  '/etc/pam.d/common-account',
  '/etc/pam.d/common-session',
  '/etc/pam.d/common-password',
];
/** vtysh authenticates through PAM (service `frr`: pam_permit); the modules are loaded at run time. */
const PAM_MODULES = ['pam_permit.so', 'pam_deny.so', 'pam_unix.so'].map((m) => `/usr/lib/x86_64-linux-gnu/security/${m}`);

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function libsOf(binary: string): Promise<string[]> {
  const res = await runCommand(['ldd', binary], { timeoutMs: 10_000 });
  const libs: string[] = [];
  for (const line of res.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/** Every file of the image (host paths), binaries first, then their libraries. */
async function imageFiles(): Promise<string[]> {
  const binaries = [];
  for (const b of [...BINARIES, ...PAM_MODULES]) if (await exists(b)) binaries.push(b);
  const files = new Set<string>(binaries);
  for (const b of binaries) for (const lib of await libsOf(b)) files.add(lib);
  for (const e of ETC_FILES) if (await exists(e)) files.add(e);
  return [...files];
}

async function imageTag(files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const f of [...files].sort()) {
    const st = await stat(f);
    hash.update(`${f}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return `${LAB_IMAGE_REPO}:${hash.digest('hex').slice(0, 16)}`;
}

/** Copies a host file to the same path below root, following symlinks (the image keeps each link's target too). */
async function copyInto(root: string, path: string): Promise<void> {
  const target = join(root, path);
  await mkdir(dirname(target), { recursive: true });
  const st = await lstat(path);
  if (st.isSymbolicLink()) {
    const link = await readlink(path);
    if (!(await exists(target))) await symlink(link, target);
    await copyInto(root, await realpath(path));
    return;
  }
  if (!(await exists(target))) await copyFile(path, target);
}

async function buildRootfs(root: string, files: readonly string[]): Promise<void> {
  // Debian's merged /usr layout, so /bin/sh and /lib64/ld-linux... resolve as on the host.
  await mkdir(join(root, 'usr'), { recursive: true });
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) {
    await mkdir(join(root, 'usr', d), { recursive: true });
    await symlink(`usr/${d}`, join(root, d));
  }
  for (const f of files) await copyInto(root, f.replace(/^\/(bin|lib|lib64|sbin)\//, '/usr/$1/'));
  await symlink('dash', join(root, 'usr/bin/sh'));
  for (const [d, mode] of [
    ['tmp', 0o1777],
    ['root', 0o700],
    ['home', 0o755],
    ['run', 0o755],
    ['var', 0o755],
    ['var/log', 0o755],
    ['var/tmp', 0o1777],
    ['etc/frr', 0o755],
    ['proc', 0o555],
    ['sys', 0o555],
    ['dev', 0o755],
  ] as const) {
    await mkdir(join(root, d), { recursive: true, mode });
  }
  await symlink('../run', join(root, 'var/run'));
  await writeFile(join(root, 'etc/frr/vtysh.conf'), 'service integrated-vtysh-config\n');
  await writeFile(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
}

/** The image tag for this host's binaries, building and importing it when docker lacks it. */
export async function ensureLabImage(docker: string): Promise<string> {
  const files = await imageFiles();
  const tag = await imageTag(files);
  const have = await runCommand([docker, 'image', 'inspect', '--format', '{{.Id}}', tag], { timeoutMs: 30_000 });
  if (have.exitCode === 0) return tag;
  const work = await mkdtemp(join(tmpdir(), 'fg-lab-image-'));
  try {
    const root = join(work, 'rootfs');
    await buildRootfs(root, files);
    await mustRun(['tar', '-C', root, '-cf', join(work, 'rootfs.tar'), '.'], { timeoutMs: 120_000 });
    const tar = await readFile(join(work, 'rootfs.tar'));
    await mustRun([docker, 'import', '--change', 'CMD ["/usr/bin/bash"]', '-', tag], { stdin: tar, timeoutMs: 120_000 });
    return tag;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
