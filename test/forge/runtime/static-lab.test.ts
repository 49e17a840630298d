import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import type { LabSpec } from '../../../src/forge/runtime/types.js';
import { cgroupPids } from '../../../src/forge/runtime/netns/cgroup.js';
import { leftovers, makeRuntime, sh, twoSubnets, uniqueId, waitFor } from './helpers.js';

function threeDeviceLab(scenarioId: string): { spec: LabSpec; a: (h: number) => string; b: (h: number) => string } {
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
          files: [
            { path: '/root/secret.txt', content: 'only-on-a\n', mode: 0o600 },
            { path: '/etc/motd', content: 'lab a motd\n' },
          ],
        },
        {
          name: 'host-b',
          kind: 'host',
          interfaces: [{ network: 'lan-b', address: `${b(10)}/24` }],
          routes: [{ to: 'default', via: b(1) }],
        },
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

test('3-device lab: host A pings host B through the router, and isolation holds', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('static');
  const { spec, b } = threeDeviceLab(id);
  const handle = await rt.create(spec);
  assert.equal(handle.devices.length, 3);
  assert.equal(handle.egress.dryRun, false);

  await t.test('A reaches B across two networks via r1', async () => {
    const res = await rt.exec(id, 'host-a', ['ping', '-c', '1', '-W', '2', b(10)], { asLearner: true });
    assert.equal(res.exitCode, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /1 received/);
  });

  await t.test('files placed on one device are invisible on another and on the host', async () => {
    const onA = await rt.exec(id, 'host-a', ['cat', '/root/secret.txt'], { asLearner: true });
    assert.equal(onA.stdout, 'only-on-a\n');
    const onB = await rt.exec(id, 'host-b', ['cat', '/root/secret.txt'], { asLearner: true });
    assert.notEqual(onB.exitCode, 0);
    const motdB = await rt.exec(id, 'host-b', ['cat', '/etc/motd'], { asLearner: true });
    assert.notEqual(motdB.stdout, 'lab a motd\n');
    assert.notEqual(existsSync('/etc/motd') ? readFileSync('/etc/motd', 'utf8') : '', 'lab a motd\n');
    const write = await rt.exec(id, 'host-a', ['/bin/sh', '-c', 'echo mine > /tmp/note && cat /tmp/note'], { asLearner: true });
    assert.equal(write.stdout, 'mine\n');
    const readB = await rt.exec(id, 'host-b', ['cat', '/tmp/note'], { asLearner: true });
    assert.notEqual(readB.exitCode, 0);
  });

  await t.test('learner is root inside, an unprivileged uid on the host', async () => {
    const res = await rt.exec(id, 'host-a', ['/bin/sh', '-c', 'id -u; hostname; cat /proc/self/uid_map'], { asLearner: true });
    const [uid, host, map] = res.stdout.split('\n');
    assert.equal(uid, '0');
    assert.equal(host, 'host-a');
    const [inside, outside, count] = (map ?? '').trim().split(/\s+/).map(Number);
    assert.equal(inside, 0);
    assert.equal(count, 1);
    assert.ok(outside !== undefined && outside >= 1000, `root maps to host uid ${outside}`);
    // The host's view of a learner process: its real uid is the unprivileged one.
    const bg = await rt.exec(id, 'host-a', ['/bin/sh', '-c', 'sleep 1000 >/dev/null 2>&1 & echo started'], { asLearner: true });
    assert.equal(bg.stdout, 'started\n');
    const pids = await cgroupPids(rt.namesFor(id).cgroupName());
    const sleeper = pids.find((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u00001000\u0000';
      } catch {
        return false;
      }
    });
    assert.ok(sleeper, 'learner process found in the scenario cgroup');
    const status = readFileSync(`/proc/${sleeper}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${outside}\\s+${outside}\\s`, 'm'));
  });

  await t.test('learner cannot mount, nsenter out, or rename the device', async () => {
    for (const cmd of ['mount -t tmpfs none /tmp', 'nsenter --net=/proc/1/ns/net true', 'nsenter -t 1 -n true', 'nsenter -t 1 -m true', 'hostname evil']) {
      const res = await rt.exec(id, 'host-a', ['/bin/sh', '-c', cmd], { asLearner: true });
      assert.notEqual(res.exitCode, 0, `learner could run: ${cmd}`);
    }
    const host = await rt.exec(id, 'host-a', ['hostname'], { asLearner: true });
    assert.equal(host.stdout, 'host-a\n');
  });

  await t.test("the device's PID 1 reaps orphans; /usr is read-only; /dev is minimal", async () => {
    const orphan = await rt.exec(id, 'host-a', ['/bin/sh', '-c', '(sleep 0.2 &) ; echo $$'], { asLearner: true });
    assert.equal(orphan.exitCode, 0);
    await waitFor('the orphan to exit and be reaped', 5000, async () => {
      const ps = await rt.exec(id, 'host-a', ['ps', '-eo', 'stat=,args='], { asLearner: true });
      return /sleep 0\.2/.test(ps.stdout) || /^Z/m.test(ps.stdout) ? undefined : true;
    });
    const res = await rt.exec(
      id,
      'host-a',
      ['/bin/bash', '-c', 'touch /usr/fg-x 2>/dev/null && echo WROTE; ls /dev | tr "\\n" " "; echo; cat <(echo substitution) > /dev/null && echo OK'],
      { asLearner: true },
    );
    assert.doesNotMatch(res.stdout, /WROTE/);
    assert.equal(res.stdout.split('\n')[0]?.trim(), 'fd full null ptmx pts random shm tty urandom zero');
    assert.match(res.stdout, /OK/);
  });

  await t.test('lab sees no host processes and no host files or sockets', async () => {
    const res = await rt.exec(
      id,
      'host-a',
      [
        '/bin/sh',
        '-c',
        'ls /proc | grep -c "^[0-9]"; ls /; test -e /work && echo WORK; test -e /run/postgresql && echo PG; test -e /run/netns && echo NETNS; true',
      ],
      { asLearner: true },
    );
    const [count, ...rest] = res.stdout.trim().split('\n');
    assert.ok(Number(count) < 10, `lab sees ${count} processes`);
    assert.ok(!rest.includes('WORK') && !rest.includes('PG') && !rest.includes('NETNS'), res.stdout);
    const ps = await rt.exec(id, 'host-a', ['ps', '-eo', 'comm='], { asLearner: true });
    assert.doesNotMatch(ps.stdout, /\bnode\b|zebra|postgres/);
  });

  await t.test("the host's 127.0.0.1 is not reachable: 127.0.0.1 is the lab's own loopback", async () => {
    let connections = 0;
    const server = createServer((s) => {
      connections++;
      s.end('host\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const res = await rt.exec(id, 'host-a', ['/bin/bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port} && echo CONNECTED`], {
        asLearner: true,
        timeoutMs: 5000,
      });
      assert.notEqual(res.exitCode, 0);
      assert.doesNotMatch(res.stdout, /CONNECTED/);
      assert.match(res.stderr, /refused/i);
      // Prove the address is the lab's own: a listener inside the lab on the same port answers.
      const own = await rt.exec(
        id,
        'host-a',
        [
          '/bin/bash',
          '-c',
          `socat -T2 TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr SYSTEM:'echo lab' & for i in $(seq ` +
            `50); do exec 3<>/dev/tcp/127.0.0.1/${port} 2>/dev/null && break; sleep 0.1; done; cat <&3`,
        ],
        { asLearner: true, timeoutMs: 8000 },
      );
      assert.equal(own.stdout.trim(), 'lab');
      assert.equal(connections, 0);
    } finally {
      server.close();
    }
  });

  await t.test('no route to the host: no device has an interface or route beyond the lab', async () => {
    for (const dev of ['host-a', 'host-b', 'r1']) {
      const links = await rt.exec(id, dev, ['ip', '-o', 'link'], {});
      const ifnames = links.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(': ')[1]?.split('@')[0]);
      assert.deepEqual(
        ifnames.filter((n) => n !== 'lo' && !/^eth\d$/.test(n ?? '')),
        [],
      );
    }
    const routes = await rt.exec(id, 'r1', ['ip', '-4', 'route'], {});
    assert.doesNotMatch(routes.stdout, /default/);
    assert.equal(sh('ip', ['-o', 'link']).includes(rt.namesFor(id).hex), false, 'no lab interface in the host namespace');
  });

  await t.test('trusted exec uses host binaries even if the learner shadows them', async () => {
    await rt.exec(id, 'host-a', ['/bin/sh', '-c', 'mkdir -p /root/bin && printf "#!/bin/sh\\necho FAKE\\n" > /root/bin/ip && chmod +x /root/bin/ip'], {
      asLearner: true,
    });
    const res = await rt.exec(id, 'host-a', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'], { asLearner: false });
    assert.match(res.stdout, /inet /);
  });

  await t.test('copyIn/copyOut move files with the learner rights', async () => {
    const tmp = mkdtempSync(join(rt.stateDir, 'copy-'));
    writeFileSync(join(tmp, 'in.bin'), Buffer.from([0, 1, 2, 255]));
    await rt.copyIn(id, 'host-b', join(tmp, 'in.bin'), '/root/in.bin');
    await rt.copyOut(id, 'host-b', join(tmp, 'out.bin'), '/root/in.bin');
    assert.deepEqual([...readFileSync(join(tmp, 'out.bin'))], [0, 1, 2, 255]);
    await assert.rejects(rt.copyOut(id, 'host-b', join(tmp, 'shadow'), '/etc/shadow'));
  });

  await t.test('spawnShell gives a learner login shell command', async () => {
    const shell = await rt.spawnShell(id, 'host-b');
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync(shell.file, [...shell.args.slice(0, -1), '-c', 'echo $(id -u)@$(hostname)'], { env: { ...shell.env }, encoding: 'utf8' });
    assert.equal(out.trim(), '0@host-b');
  });

  await rt.destroy(id);
  assert.deepEqual(leftovers(rt, id), []);
  await rt.destroy(id); // idempotent
});

test('labs of different scenarios cannot reach each other', async (t) => {
  const rt = makeRuntime(t);
  const one = threeDeviceLab(uniqueId('x1'));
  const two = threeDeviceLab(uniqueId('x2'));
  await Promise.all([rt.create(one.spec), rt.create(two.spec)]);
  const own = await rt.exec(one.spec.scenarioId, 'host-a', ['ping', '-c', '1', '-W', '1', one.b(10)], { asLearner: true });
  assert.equal(own.exitCode, 0);
  await Promise.all(
    [two.b(10), two.a(10), two.a(1)].map(async (target) => {
      const res = await rt.exec(one.spec.scenarioId, 'host-a', ['ping', '-c', '1', '-W', '1', target], { asLearner: true });
      assert.notEqual(res.exitCode, 0, `scenario one reached ${target} of scenario two`);
    }),
  );
});
