import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import type { LabSpec } from '../../../src/forge/runtime/types.js';
import { freePort } from '../../helpers/servers.js';
import { leftovers, makeRuntime, twoSubnets, uniqueId, waitFor } from './helpers.js';

/** host-a -- lan-a -- r1 (FRR) -- lan-b -- host-b */
function lab(scenarioId: string): { spec: LabSpec; a: (h: number) => string; b: (h: number) => string } {
  const { a, b, networks } = twoSubnets();
  return {
    a,
    b,
    spec: {
      scenarioId,
      networks,
      devices: [
        { name: 'host-a', kind: 'host', interfaces: [{ network: 'lan-a', address: `${a(10)}/24` }], routes: [{ to: 'default', via: a(1) }] },
        { name: 'host-b', kind: 'host', interfaces: [{ network: 'lan-b', address: `${b(10)}/24` }], routes: [{ to: 'default', via: b(1) }] },
        {
          name: 'r1',
          kind: 'router',
          interfaces: [
            { network: 'lan-a', address: `${a(1)}/24` },
            { network: 'lan-b', address: `${b(1)}/24` },
          ],
          frrConfig: 'frr defaults traditional\n',
        },
      ],
    },
  };
}

test("the learner is root over its device's network: addresses, routes, nftables, sysctls, vtysh", async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('netadmin');
  const { spec, a, b } = lab(id);
  await rt.create(spec);

  // What a netplus/ccna exercise does, run as the learner's shell would run it.
  const script = [
    'ip addr add 10.99.99.99/32 dev lo',
    `ip route add 10.98.0.0/16 via ${a(1)}`,
    'ip link set eth0 mtu 1400',
    "nft add table inet mine && nft add chain inet mine out '{ type filter hook output priority 0; policy accept; }'",
    'nft add rule inet mine out tcp dport 9 drop',
    'sysctl -qw net.ipv4.conf.all.log_martians=1',
  ].join(' && ');
  const res = await rt.exec(id, 'host-a', ['/bin/sh', '-c', script], { asLearner: true });
  assert.equal(res.exitCode, 0, res.stderr);

  // Checked from outside the learner's reach (trusted exec: host binaries, device netns).
  const addrs = await rt.exec(id, 'host-a', ['ip', '-4', '-o', 'addr'], {});
  assert.match(addrs.stdout, /inet 10\.99\.99\.99\/32/);
  const routes = await rt.exec(id, 'host-a', ['ip', '-4', 'route'], {});
  assert.match(routes.stdout, new RegExp(`10\\.98\\.0\\.0/16 via ${a(1).replace(/\./g, '\\.')}`));
  assert.match((await rt.exec(id, 'host-a', ['ip', 'link', 'show', 'eth0'], {})).stdout, /mtu 1400/);
  assert.match((await rt.exec(id, 'host-a', ['nft', 'list', 'ruleset'], {})).stdout, /tcp dport 9 drop/);

  const flush = await rt.exec(id, 'host-a', ['nft', 'flush', 'ruleset'], { asLearner: true });
  assert.equal(flush.exitCode, 0, flush.stderr);
  assert.equal((await rt.exec(id, 'host-a', ['nft', 'list', 'ruleset'], {})).stdout.trim(), '');

  // The router: static route through vtysh, installed by the device's own zebra.
  const vtysh = await rt.exec(id, 'r1', ['vtysh', '-c', 'configure terminal', '-c', `ip route 10.97.0.0/16 ${b(10)}`], { asLearner: true });
  assert.equal(vtysh.exitCode, 0, vtysh.stdout + vtysh.stderr);
  assert.doesNotMatch(vtysh.stdout + vtysh.stderr, /Permission denied/);
  await waitFor('zebra to install the static route', 5000, async () => {
    const r = await rt.exec(id, 'r1', ['ip', '-4', 'route', 'show', '10.97.0.0/16'], {});
    return /proto (static|196)/.test(r.stdout) ? true : undefined;
  });
  // ...and plain ip on the router too (the learner owns its forwarding table).
  const ipRoute = await rt.exec(
    id,
    'r1',
    ['/bin/sh', '-c', `ip route add 10.96.0.0/16 via ${b(10)} && sysctl -qw net.ipv4.ip_forward=0 && sysctl -n net.ipv4.ip_forward`],
    { asLearner: true },
  );
  assert.equal(ipRoute.stdout.trim(), '0', ipRoute.stderr);

  // Changes stay inside the device: host-b's view and the host's are untouched.
  assert.doesNotMatch((await rt.exec(id, 'host-b', ['ip', '-4', '-o', 'addr'], {})).stdout, /10\.99\.99\.99/);
  const { execFileSync } = await import('node:child_process');
  assert.doesNotMatch(execFileSync('ip', ['-4', 'route'], { encoding: 'utf8' }), /10\.9[678]\.0\.0/);

  await rt.destroy(id);
  assert.deepEqual(leftovers(rt, id), []);
});

async function listen(host: string, port: number, onConnection: () => void): Promise<Server> {
  const server = createServer((s) => {
    onConnection();
    s.end('host\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}

test('the learner cannot see or enter the host, nor reach any host or platform port', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('hostiso');
  const { spec } = lab(id);
  await rt.create(spec);

  await t.test('no host interface, namespace or process is visible', async () => {
    const links = await rt.exec(id, 'host-a', ['/bin/sh', '-c', 'ip -o link | cut -d: -f2; ls /sys/class/net'], { asLearner: true });
    const seen = new Set(
      links.stdout
        .split(/\s+/)
        .filter(Boolean)
        .map((n) => n.split('@')[0]),
    );
    assert.deepEqual([...seen].sort(), ['eth0', 'lo']);
    for (const cmd of [
      'nsenter -t 1 -n true',
      'nsenter -t 1 -m true',
      'nsenter -t 1 -p true',
      'nsenter --net=/proc/1/ns/net true',
      'mount -t tmpfs none /mnt',
      'mount --bind /tmp /root',
      'umount /proc',
    ]) {
      const res = await rt.exec(id, 'host-a', ['/bin/sh', '-c', cmd], { asLearner: true });
      assert.notEqual(res.exitCode, 0, `learner could run: ${cmd}`);
    }
    // PID 1 is the device's init, and only the lab's processes exist.
    const procs = await rt.exec(id, 'host-a', ['/bin/sh', '-c', 'ls /proc | grep -c "^[0-9]"; ps -eo comm='], { asLearner: true });
    const [count, ...comms] = procs.stdout.trim().split('\n');
    assert.ok(Number(count) < 10, `lab sees ${count} processes`);
    assert.doesNotMatch(comms.join(' '), /\bnode\b|postgres|nats|redis|zebra/);
    // The learner's namespaces: network owned by its user namespace, the others not.
    const ids = await rt.exec(id, 'host-a', ['/bin/sh', '-c', 'readlink /proc/self/ns/net /proc/self/ns/user'], { asLearner: true });
    const { readlinkSync } = await import('node:fs');
    assert.doesNotMatch(ids.stdout, new RegExp(readlinkSync('/proc/self/ns/net').replace(/[[\]]/g, '\\$&')));
    assert.doesNotMatch(ids.stdout, new RegExp(readlinkSync('/proc/self/ns/user').replace(/[[\]]/g, '\\$&')));
  });

  await t.test('no host address or port answers, whatever routes the learner sets', async () => {
    let connections = 0;
    const port = await freePort();
    // The platform listens on 127.0.0.1 and (in production) on the host's addresses.
    const servers = [await listen('127.0.0.1', port, () => connections++), await listen('0.0.0.0', await freePort(), () => connections++)];
    const allPort = (servers[1]!.address() as { port: number }).port;
    try {
      const hostAddrs = Object.values(networkInterfaces())
        .flat()
        .filter((i) => i?.family === 'IPv4' && !i.internal)
        .map((i) => i!.address);
      const attempts = [`127.0.0.1/${port}`, `127.0.0.1/${allPort}`, ...hostAddrs.flatMap((h) => [`${h}/${port}`, `${h}/${allPort}`])];
      const script = [
        'ip route replace default dev eth0',
        'nft flush ruleset',
        ...attempts.map((tgt) => `(timeout 2 bash -c 'exec 3<>/dev/tcp/${tgt} && echo CONNECTED ${tgt}' 2>/dev/null &)`),
        'sleep 2.5',
      ].join('; ');
      const res = await rt.exec(id, 'host-a', ['/bin/bash', '-c', script], { asLearner: true, timeoutMs: 10_000 });
      assert.doesNotMatch(res.stdout, /CONNECTED/);
      assert.equal(connections, 0);
    } finally {
      for (const s of servers) s.close();
    }
  });

  await rt.destroy(id);
  assert.deepEqual(leftovers(rt, id), []);
});

test("a learner rewiring its device still cannot reach another scenario's devices", async (t) => {
  const rt = makeRuntime(t);
  const one = lab(uniqueId('x1'));
  const two = lab(uniqueId('x2'));
  await Promise.all([rt.create(one.spec), rt.create(two.spec)]);
  const own = await rt.exec(one.spec.scenarioId, 'host-a', ['ping', '-c', '1', '-W', '1', one.b(10)], { asLearner: true });
  assert.equal(own.exitCode, 0, own.stdout);
  // Put itself on scenario two's subnets (on-link), then try every device of scenario two.
  const targets = [two.a(10), two.a(1), two.b(10), two.b(1)];
  const script = [
    `ip addr add ${two.a(99)}/24 dev eth0`,
    `ip route replace ${two.b(0)} dev eth0`,
    ...targets.map((x) => `ping -c 1 -W 1 ${x} >/dev/null && echo REACHED ${x}`),
    'true',
  ].join('; ');
  const res = await rt.exec(one.spec.scenarioId, 'host-a', ['/bin/bash', '-c', script], { asLearner: true, timeoutMs: 15_000 });
  assert.equal(res.exitCode, 0, res.stderr);
  assert.doesNotMatch(res.stdout, /REACHED/);
});
