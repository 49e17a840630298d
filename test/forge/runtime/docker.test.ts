import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { DockerLabRuntime, dockerAvailable } from '../../../src/forge/runtime/docker/driver.js';
import type { LabRuntime, LabSpec } from '../../../src/forge/runtime/types.js';
import { FRR_RUN_DIR } from '../../../src/forge/runtime/netns/naming.js';
import { freePort } from '../../helpers/servers.js';
import { twoSubnets, uniqueId, waitFor } from './helpers.js';
import { optionalTool } from '../../helpers/optional-tools.js';

// The docker driver is tested against a real dockerd (Debian's docker.io, images built locally
// with `docker import`). When none runs, the test starts its own on a private socket and data root,
// with no iptables, forwarding or default bridge (nothing of the host's networking changes), and
// stops it afterwards; only without dockerd installed is there nothing real to test.
const ownDaemon = (await dockerAvailable()) ? undefined : await startOwnDockerd();
const available = ownDaemon !== undefined || (await dockerAvailable());
const docker = optionalTool(available ? false : 'no docker daemon answers `docker info` and /usr/sbin/dockerd is not installed (apt-get install docker.io)');
if (ownDaemon) process.once('exit', () => ownDaemon.stop());
after(() => ownDaemon?.stop());

async function startOwnDockerd(): Promise<{ stop(): void } | undefined> {
  if (!existsSync('/usr/sbin/dockerd')) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fg-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const daemon = spawn(
    '/usr/sbin/dockerd',
    [
      '--host',
      `unix://${socket}`,
      '--data-root',
      join(dir, 'root'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '--iptables=false',
      '--ip6tables=false',
      '--ip-forward=false',
      '--ip-masq=false',
      '--bridge=none',
    ],
    { stdio: 'ignore', detached: false },
  );
  process.env.DOCKER_HOST = `unix://${socket}`;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    daemon.kill('SIGTERM');
    try {
      execFileSync('sh', ['-c', `for i in $(seq 1 50); do kill -0 ${daemon.pid} 2>/dev/null || exit 0; sleep 0.1; done; kill -9 ${daemon.pid}`]);
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await dockerAvailable()) return { stop };
    if (daemon.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 250)); // waiting on the daemon's start, not our own work
  }
  stop();
  delete process.env.DOCKER_HOST;
  return undefined;
}

function makeDockerRuntime(t: TestContext): DockerLabRuntime {
  const stateDir = mkdtempSync(join(tmpdir(), 'fg-dklabs-'));
  const rt = new DockerLabRuntime({ stateDir });
  t.after(async () => {
    await rt.reconcile(new Set());
    rmSync(stateDir, { recursive: true, force: true });
  });
  return rt;
}

function lab(scenarioId: string): { spec: LabSpec; a: (h: number) => string; b: (h: number) => string } {
  const { a, b, networks } = twoSubnets();
  return {
    a,
    b,
    spec: {
      scenarioId,
      networks,
      devices: [
        {
          name: 'host-a',
          kind: 'host',
          interfaces: [{ network: 'lan-a', address: `${a(10)}/24` }],
          routes: [{ to: 'default', via: a(1) }],
          files: [{ path: '/root/secret.txt', content: 'only-on-a\n', mode: 0o600 }],
        },
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
      limits: { pids: 128 },
    },
  };
}

/** Docker objects, host nft table and cgroups still carrying the lab's prefix or hex. */
function dockerLeftovers(rt: DockerLabRuntime, scenarioId: string): string[] {
  const names = rt.namesFor(scenarioId);
  const found: string[] = [];
  const ps = execFileSync('docker', ['ps', '-a', '--format', '{{.Names}}'], { encoding: 'utf8' });
  for (const n of ps.split('\n')) if (n.startsWith(names.prefix)) found.push(`container ${n}`);
  const nets = execFileSync('docker', ['network', 'ls', '--format', '{{.Name}}'], { encoding: 'utf8' });
  for (const n of nets.split('\n')) if (n.startsWith(names.prefix)) found.push(`network ${n}`);
  if (execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).includes(names.hex)) found.push('host nft table');
  for (const f of existsSync(FRR_RUN_DIR) ? readdirSync(FRR_RUN_DIR) : []) if (f.startsWith(names.prefix)) found.push(`frr dir ${f}`);
  if (execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).includes(names.hex)) found.push('host link');
  for (const c of ['memory', 'pids', 'cpu', 'freezer', 'cpuset', 'blkio', 'devices']) {
    if (existsSync(`/sys/fs/cgroup/${c}/frostgate/${names.cgroupName()}`)) found.push(`cgroup ${c}`);
  }
  return found;
}

test(
  'docker driver: the same LabRuntime contract, for real',
  { skip: docker.skip },
  docker.test(async (t) => {
    const rt: DockerLabRuntime = makeDockerRuntime(t);
    const runtime: LabRuntime = rt;
    const id = uniqueId('docker');
    const { spec, b } = lab(id);
    const handle = await runtime.create(spec);
    assert.equal(runtime.driver, 'docker');
    assert.deepEqual(
      handle.devices.map((d) => d.name),
      ['host-a', 'host-b', 'r1'],
    );
    assert.ok(
      handle.devices.every((d) => d.addresses.every((a) => /^eth\d$/.test(a.interface))),
      JSON.stringify(handle.devices),
    );

    await t.test('A reaches B across two networks via r1; the learner is root and manages its network', async () => {
      const ping = await runtime.exec(id, 'host-a', ['ping', '-c', '1', '-W', '2', b(10)], { asLearner: true });
      assert.equal(ping.exitCode, 0, ping.stdout + ping.stderr);
      const admin = await runtime.exec(id, 'host-a', ['/bin/sh', '-c', 'id -u && hostname && ip addr add 10.99.99.99/32 dev lo && ip -o addr show lo'], {
        asLearner: true,
      });
      assert.equal(admin.exitCode, 0, admin.stderr);
      assert.match(admin.stdout, /^0\nhost-a\n/);
      assert.match(admin.stdout, /10\.99\.99\.99/);
      const trusted = await runtime.exec(id, 'host-a', ['ip', '-4', '-o', 'addr'], {});
      assert.match(trusted.stdout, /10\.99\.99\.99/);
    });

    await t.test('files are per device; copyIn/copyOut round-trip bytes', async () => {
      assert.equal((await runtime.exec(id, 'host-a', ['cat', '/root/secret.txt'], { asLearner: true })).stdout, 'only-on-a\n');
      assert.notEqual((await runtime.exec(id, 'host-b', ['cat', '/root/secret.txt'], { asLearner: true })).exitCode, 0);
      const tmp = mkdtempSync(join(tmpdir(), 'fg-dk-copy-'));
      try {
        writeFileSync(join(tmp, 'in.bin'), Buffer.from([0, 1, 2, 255]));
        await runtime.copyIn(id, 'host-b', join(tmp, 'in.bin'), '/root/in.bin');
        await runtime.copyOut(id, 'host-b', join(tmp, 'out.bin'), '/root/in.bin');
        assert.deepEqual([...readFileSync(join(tmp, 'out.bin'))], [0, 1, 2, 255]);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });

    await t.test("the router runs its own FRR; the learner's vtysh configures it", async () => {
      const conf = await runtime.exec(id, 'r1', ['vtysh', '-c', 'configure terminal', '-c', `ip route 10.97.0.0/16 ${b(10)}`], { asLearner: true });
      assert.equal(conf.exitCode, 0, conf.stdout + conf.stderr);
      await waitFor('zebra to install the static route', 5000, async () => {
        const r = await runtime.exec(id, 'r1', ['ip', '-4', 'route', 'show', '10.97.0.0/16'], {});
        return /proto (static|196)/.test(r.stdout) ? true : undefined;
      });
      const show = await runtime.exec(id, 'r1', ['vtysh', '-c', 'show running-config'], {});
      assert.match(show.stdout, /hostname r1/);
    });

    await t.test('no host process, interface or port is reachable from the lab', async () => {
      const ps = await runtime.exec(id, 'host-a', ['ps', '-eo', 'comm='], { asLearner: true });
      assert.doesNotMatch(ps.stdout, /\bnode\b|dockerd|postgres/);
      let connections = 0;
      const server = createServer((s) => {
        connections++;
        s.end();
      });
      const port = await freePort();
      await new Promise<void>((r) => server.listen(port, '0.0.0.0', r));
      try {
        // The docker bridge gateway is a host address: the scenario's host nft table drops it.
        const gateways =
          handle.devices.length > 0 ? ['lan-a', 'lan-b'].map((n) => spec.networks.find((x) => x.name === n)!.cidr.replace(/\.0\/24$/, '.254')) : [];
        const hostAddrs = Object.values(networkInterfaces())
          .flat()
          .filter((i) => i?.family === 'IPv4' && !i.internal)
          .map((i) => i!.address);
        const targets = [...gateways, ...hostAddrs, '127.0.0.1'];
        const script = [
          'ip route replace default dev eth0 2>/dev/null',
          ...targets.map((x) => `(timeout 2 bash -c 'exec 3<>/dev/tcp/${x}/${port} && echo CONNECTED ${x}' 2>/dev/null &)`),
          'sleep 2.5',
        ].join('; ');
        const res = await runtime.exec(id, 'host-a', ['/bin/bash', '-c', script], { asLearner: true, timeoutMs: 10_000 });
        assert.doesNotMatch(res.stdout, /CONNECTED/);
        assert.equal(connections, 0);
      } finally {
        server.close();
      }
    });

    await t.test('the scenario cgroup bounds the lab: a fork bomb stops at the pids limit', async () => {
      const dir = `/sys/fs/cgroup/pids/frostgate/${rt.namesFor(id).cgroupName()}`;
      const bomb = await runtime.exec(id, 'host-b', ['/bin/bash', '-c', 'b(){ b | b & }; b; sleep 2'], { asLearner: true, timeoutMs: 6000 });
      // The containers' cgroups are children of the scenario's: its limit holds for all of them.
      assert.match(bomb.stderr, /fork: .*Resource temporarily unavailable/);
      assert.ok(Number(readFileSync(`${dir}/pids.peak`, 'utf8')) <= 128, 'peak within the scenario limit');
      assert.equal(execFileSync('/bin/echo', ['host ok'], { encoding: 'utf8' }), 'host ok\n');
    });

    const listed = await runtime.list();
    assert.deepEqual(
      listed.map((l) => [l.scenarioId, l.status, l.devices.join()]),
      [[id, 'running', 'host-a,host-b,r1']],
    );
    await runtime.destroy(id);
    assert.deepEqual(dockerLeftovers(rt, id), []);
    await runtime.destroy(id); // idempotent
  }),
);

test(
  'docker driver: reconcile by a fresh instance removes labs not kept, leaving nothing',
  { skip: docker.skip },
  docker.test(async (t) => {
    const rt = makeDockerRuntime(t);
    const keep = uniqueId('dkeep');
    const drop = uniqueId('ddrop');
    await Promise.all([rt.create(lab(keep).spec), rt.create(lab(drop).spec)]);
    const fresh = new DockerLabRuntime({ stateDir: rt.stateDir });
    const { removed } = await fresh.reconcile(new Set([keep]));
    assert.deepEqual(removed, [drop]);
    assert.deepEqual(dockerLeftovers(rt, drop), []);
    assert.equal((await fresh.exec(keep, 'host-a', ['true'], { asLearner: true })).exitCode, 0);
    await fresh.reconcile(new Set());
    assert.deepEqual(dockerLeftovers(rt, keep), []);
  }),
);
