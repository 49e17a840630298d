import { readFile, mkdir, writeFile } from 'node:fs/promises';

/**
 * A device's /etc: generated identity files plus a short allowlist of the host's public,
 * non-secret configuration that the tools in /usr need (the dynamic linker's cache, name
 * service switch, services and protocols for the network tools, iproute2's tables, shell
 * start-up files). Nothing else of the host's /etc reaches a device; template files are
 * placed over this afterwards (placeFile).
 */
const HOST_FILES = [
  'ld.so.cache',
  'ld.so.conf',
  'nsswitch.conf',
  'services',
  'protocols',
  'ethertypes',
  'rpc',
  'bash.bashrc',
  'profile',
  'inputrc',
  'shells',
  'iproute2/rt_tables',
  'iproute2/rt_protos',
  'iproute2/rt_scopes',
  'iproute2/rt_realms',
  'iproute2/rt_dsfield',
  'iproute2/ematch_map',
  'iproute2/group',
  'iproute2/nl_protos',
];

type HostFile = readonly [string, Buffer];
let hostFiles: Promise<HostFile[]> | undefined;

async function readHostFile(name: string): Promise<HostFile[]> {
  const content = await readFile(`/etc/${name}`).catch(() => undefined);
  return content === undefined ? [] : [[name, content]];
}

/** Read once per process: these change with package upgrades, not per lab. */
function readHostFiles(): Promise<HostFile[]> {
  hostFiles ??= Promise.all(HOST_FILES.map(readHostFile)).then((all) => all.flat());
  return hostFiles;
}

/** The frr and frrvty entries of the host, so vtysh and `ls -l /run/frr` name FRR's owner. */
async function frrEntries(file: 'passwd' | 'group'): Promise<string> {
  const text = await readFile(`/etc/${file}`, 'utf8').catch(() => '');
  const lines = text.split('\n').filter((l) => l.startsWith('frr:') || l.startsWith('frrvty:'));
  return lines.map((l) => (file === 'passwd' ? l.split(':').slice(0, 5).concat('/nonexistent', '/usr/sbin/nologin').join(':') : l)).join('\n');
}

export async function writeDeviceEtc(etc: string, hostname: string, router: boolean): Promise<void> {
  await mkdir(`${etc}/iproute2`, { recursive: true });
  await mkdir(`${etc}/alternatives`, { recursive: true });
  const files: Array<readonly [string, string | Buffer]> = [
    ['hostname', `${hostname}\n`],
    ['hosts', `127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 ${hostname}\n`],
    ['passwd', `root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n${router ? await frrEntries('passwd') : ''}\n`],
    ['group', `root:x:0:\nnogroup:x:65534:\n${router ? await frrEntries('group') : ''}\n`],
    ['resolv.conf', ''],
    ...(await readHostFiles()),
  ];
  if (router) {
    await mkdir(`${etc}/frr`, { recursive: true, mode: 0o755 });
    await mkdir(`${etc}/pam.d`, { recursive: true, mode: 0o755 });
    // The learner's vtysh reads this one (the host's is frr-group only), and asks PAM for the
    // `frr` service: whoever has a shell on the router may configure it.
    files.push(['frr/vtysh.conf', 'service integrated-vtysh-config\n']);
    files.push(['pam.d/frr', 'auth sufficient pam_permit.so\naccount sufficient pam_permit.so\nsession optional pam_permit.so\n']);
  }
  await Promise.all(files.map(([name, content]) => writeFile(`${etc}/${name}`, content, { mode: 0o644 })));
}
