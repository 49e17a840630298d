#!/usr/bin/env node
// Makes sure the Debian packages FrostGate needs are present, installing the missing ones when
// running as root with apt; otherwise says exactly what is missing and how to install it.
// Called by `npm start` (prestart) and `npm test` (pretest); safe to run any time.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

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
];
const TESTS = [
  ['socat', '/usr/bin/socat', 'lab network tests'],
  ['redis-server', '/usr/bin/redis-server', 'throwaway Redis instances in chaos tests'],
  ['nats-server', '/usr/sbin/nats-server', 'throwaway NATS instances in chaos tests'],
  ['crowdsec-firewall-bouncer', '/usr/bin/crowdsec-firewall-bouncer', "CrowdSec's firewall bouncer enforcing FrostGate decisions (real-client test)"],
  ['crowdsec-custom-bouncer', '/usr/bin/crowdsec-custom-bouncer', "CrowdSec's custom bouncer receiving FrostGate decisions (real-client test)"],
  ['chromium', '/usr/bin/chromium', 'browser tests of the learner lab page (headless)'],
  ['prometheus', '/usr/bin/promtool', 'checking and unit-testing the Prometheus rules, and a real Prometheus scraping FrostGate (test/deploy)'],
  ['docker-compose', '/usr/bin/docker-compose', 'validating deploy/compose.yml and its staging override (test/deploy)'],
  ['mmdebstrap', '/usr/bin/mmdebstrap', 'building the Debian base of the FrostGate image (deploy/image/build.sh)'],
  ['docker.io', '/usr/sbin/dockerd', 'the docker lab driver tests (they start their own daemon on a private socket)'],
];

const wanted = forTests ? [...RUNTIME, ...TESTS] : RUNTIME;
const missing = wanted.filter(([, file]) => !existsSync(file));
if (missing.length === 0) process.exit(0);

const names = missing.map(([pkg]) => pkg);
const explain = missing.map(([pkg, , why]) => `  - ${pkg}: ${why}`).join('\n');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
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
