import { chown, readFile, writeFile } from 'node:fs/promises';
import { mustRun } from './process.js';

/**
 * FRRouting inside a router device: the host's daemons run in the device's network and UTS
 * namespaces (and the scenario cgroup), with a per-device config file, pid files, vty
 * sockets and zserv socket in the device's frr dir. TCP vty is disabled (-P 0), so nothing
 * listens on the lab network. The host's vtysh reaches them with --vty_socket.
 */
export const FRR_BIN = '/usr/lib/frr';

const OPTIONAL_DAEMONS: ReadonlyArray<readonly [string, RegExp]> = [
  ['ospfd', /^\s*router ospf\b/m],
  ['bgpd', /^\s*router bgp\b/m],
  ['ripd', /^\s*router rip\b/m],
  ['isisd', /^\s*router isis\b/m],
  ['ospf6d', /^\s*router ospf6\b/m],
];

export function daemonsFor(config: string): string[] {
  return ['zebra', 'staticd', ...OPTIONAL_DAEMONS.filter(([, re]) => re.test(config)).map(([d]) => d)];
}

export function vtyshArgs(frrDir: string): string[] {
  return ['--vty_socket', frrDir, '--config_dir', frrDir];
}

function daemonArgv(daemon: string, frrDir: string): string[] {
  return [
    `${FRR_BIN}/${daemon}`,
    '-d',
    '-f',
    `${frrDir}/frr.conf`,
    '-i',
    `${frrDir}/${daemon}.pid`,
    '--vty_socket',
    frrDir,
    '-z',
    `${frrDir}/zserv.api`,
    '-P',
    '0',
    '-u',
    'frr',
    '-g',
    'frr',
    '--log',
    `file:${frrDir}/${daemon}.log`,
  ];
}

export interface StartFrrInput {
  readonly frrDir: string;
  readonly config: string;
  readonly hostname: string;
  /** Wraps an argv so it runs in the device's namespaces and the scenario's cgroup. */
  readonly wrap: (argv: readonly string[]) => string[];
}

async function frrIds(): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('frr:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('no frr user on this host');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Starts zebra first (the others connect to its zserv socket), then the protocol daemons in
 * parallel. Each daemon reads the whole integrated config and applies the parts it knows.
 */
export async function startFrr(input: StartFrrInput): Promise<string[]> {
  const { uid, gid } = await frrIds();
  const config = /^hostname /m.test(input.config) ? input.config : `hostname ${input.hostname}\n${input.config}`;
  await chown(input.frrDir, uid, gid);
  await writeFile(`${input.frrDir}/frr.conf`, config, { mode: 0o640 });
  await chown(`${input.frrDir}/frr.conf`, uid, gid);
  await writeFile(`${input.frrDir}/vtysh.conf`, 'service integrated-vtysh-config\n', { mode: 0o644 });
  // One self-contained script for all daemons (it finishes even if this process exits):
  // each `-d` returns once its daemon has read the config. The learner (an unprivileged host
  // uid) configures the router through vtysh like on real gear; the vty sockets only reach
  // this device's daemons. zserv.api stays frr-only.
  const [first, ...rest] = daemonsFor(config);
  const quote = (argv: readonly string[]): string => argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = [
    'set -e',
    quote(daemonArgv(first!, input.frrDir)),
    ...rest.map((d) => `${quote(daemonArgv(d, input.frrDir))} & pids="$pids $!"`),
    'for p in $pids; do wait "$p"; done',
    `chmod 777 ${quote([input.frrDir])}/*.vty`,
  ].join('\n');
  await mustRun(input.wrap(['/bin/sh', '-c', script]), { timeoutMs: 15_000 });
  return daemonsFor(config);
}
