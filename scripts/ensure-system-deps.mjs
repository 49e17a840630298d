#!/usr/bin/env node
// Makes sure the Debian packages FrostGate needs are present, installing the missing ones when
// running as root with apt; otherwise says exactly what is missing and how to install it.
// Called by `npm start` (prestart) and `npm test` (pretest); safe to run any time.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';

const forTests = process.argv.includes('--for-tests');

/** [package, a file it provides, why we need it] */
const RUNTIME = [
  ['iproute2', '/usr/sbin/ip', 'lab networks (network namespaces, veth, bridges)'],
  ['nftables', '/usr/sbin/nft', 'lab egress rules (deny-all by default)'],
  ['frr', '/usr/lib/frr/zebra', 'routers in ccna labs (OSPF, BGP)'],
  ['util-linux', '/usr/bin/nsenter', 'entering lab devices (nsenter, unshare, setpriv)'],
  ['iputils-ping', '/usr/bin/ping', 'reachability checks in labs'],
  ['zstd', '/usr/bin/zstd', 'evidence archives (.tar.zst)'],
  ['dnsmasq-base', '/usr/sbin/dnsmasq', 'DNS/DHCP services inside netplus labs'],
  ['bind9-dnsutils', '/usr/bin/dig', 'dns checks when grading labs'],
  ['curl', '/usr/bin/curl', 'http checks when grading labs'],
  ['busybox', '/bin/busybox', 'the DHCP client (udhcpc) in netplus labs'],
  ['gcc', '/usr/bin/gcc', 'building the lab sandbox helper (native/fg-sandbox.c: seccomp filter, capability drop)'],
  ['linux-libc-dev', '/usr/include/linux/seccomp.h', 'the kernel headers the lab sandbox helper is built against'],
];
const TESTS = [
  ['socat', '/usr/bin/socat', 'lab network tests'],
  ['redis-server', '/usr/bin/redis-server', 'throwaway Redis instances in chaos tests'],
  ['nats-server', '/usr/sbin/nats-server', 'throwaway NATS instances in chaos tests'],
  ['crowdsec-firewall-bouncer', '/usr/bin/crowdsec-firewall-bouncer', "CrowdSec's firewall bouncer enforcing FrostGate decisions (real-client test)"],
  ['crowdsec-custom-bouncer', '/usr/bin/crowdsec-custom-bouncer', "CrowdSec's custom bouncer receiving FrostGate decisions (real-client test)"],
  ['chromium', '/usr/bin/chromium', 'browser tests of the learner lab page and the operators console (headless)'],
  ['prometheus', '/usr/bin/promtool', 'checking and unit-testing the Prometheus rules, and a real Prometheus scraping FrostGate (test/deploy)'],
  ['docker-compose', '/usr/bin/docker-compose', 'validating deploy/compose.yml and its staging override (test/deploy)'],
  ['mmdebstrap', '/usr/bin/mmdebstrap', 'building the Debian base of the FrostGate image (deploy/image/build.sh)'],
  ['docker.io', '/usr/sbin/dockerd', 'the docker lab driver tests (they start their own daemon on a private socket)'],
];

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const wanted = forTests ? [...RUNTIME, ...TESTS] : RUNTIME;
const missing = wanted.filter(([, file]) => !existsSync(file));
if (missing.length === 0) process.exit(buildSandboxHelper());

const names = missing.map(([pkg]) => pkg);
const explain = missing.map(([pkg, , why]) => `  - ${pkg}: ${why}`).join('\n');
const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;

if (!isRoot || !hasApt) {
  console.error(
    `FrostGate needs these Debian packages, which are missing:\n${explain}\n` +
      `Install them with:\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${names.join(' ')}\n` +
      'The platform still starts; lab features that need them report a clear error until they are installed.',
  );
  process.exit(0);
}

console.error(`Installing missing Debian packages: ${names.join(', ')}\n${explain}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], { stdio: ['ignore', 'inherit', 'inherit'], env });
} catch (err) {
  console.error(
    `Could not install ${names.join(' ')} (${err.message}). Install them by hand:\n  apt-get install -y --no-install-recommends ${names.join(' ')}`,
  );
  process.exit(forTests ? 1 : 0);
}
const still = wanted.filter(([, file]) => !existsSync(file)).map(([pkg]) => pkg);
if (still.length > 0) {
  console.error(`Still missing after install: ${still.join(', ')}`);
  process.exit(forTests ? 1 : 0);
}
process.exit(buildSandboxHelper());

/**
 * Compiles native/fg-sandbox.c (the wrapper of every lab device process) into
 * /usr/local/libexec/frostgate/fg-sandbox-<hash of its source>, the path the netns lab runtime
 * looks for (src/forge/runtime/netns/sandbox.ts). Under /usr so devices, which see the host's
 * /usr read-only, can exec it; named by content so checkouts of different versions coexist.
 * Returns the exit code for this script.
 */
function buildSandboxHelper() {
  const source = readFileSync(new URL('../native/fg-sandbox.c', import.meta.url));
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = '/usr/local/libexec/frostgate';
  const target = `${dir}/fg-sandbox-${hash}`;
  if (existsSync(target)) return 0;
  if (!isRoot) {
    console.error(`The lab sandbox helper ${target} is missing; run this script as root (labs refuse to start without it).`);
    return 0;
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const tmp = `${target}.${process.pid}.tmp`;
    execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', tmp, '-x', 'c', '-'], { input: source, stdio: ['pipe', 'inherit', 'inherit'] });
    renameSync(tmp, target);
    console.error(`Built the lab sandbox helper: ${target}`);
    return 0;
  } catch (err) {
    console.error(`Could not build the lab sandbox helper (${err.message}); labs refuse to start without it.`);
    return forTests ? 1 : 0;
  }
}
