import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { buildSwitchRuleset } from '../../../../src/forge/runtime/egress/ruleset.js';
import type { LabSpec } from '../../../../src/forge/runtime/types.js';
import type { NetnsLabRuntime } from '../../../../src/forge/runtime/netns/driver.js';
import { makeRuntime, sh, subnet, uniqueId, waitFor } from '../helpers.js';

const OUTSIDE = '198.51.100.1';

function spec(scenarioId: string, lan: (h: number) => string, allow: boolean): LabSpec {
  return {
    scenarioId,
    networks: [{ name: 'lan', cidr: lan(0) }],
    devices: [
      { name: 'a', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(10)}/24` }] },
      { name: 'b', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(11)}/24` }] },
    ],
    egress: { name: 'test', allow: allow ? [{ cidr: '198.51.100.0/29', proto: 'tcp', port: 8080, from: ['a'] }] : [] },
  };
}

/**
 * How a misconfigured lab could reach an "outside" host (a namespace this test creates, with a
 * TCP listener on 8080 that counts connections):
 *  - `bridge`: the outside host is a port of the lab's own bridge (L2 adjacent to every device);
 *  - `routed`: the outside host hangs off the switch namespace, which has an address on the
 *    lab bridge and forwards IPv4 (an uplink through the switch).
 * Returns the command a learner runs to point its device at the outside.
 */
interface Outside {
  readonly routeCmd: string;
  connections(): number;
}

async function outsideHost(t: TestContext, rt: NetnsLabRuntime, scenarioId: string, lan: (h: number) => string, mode: 'bridge' | 'routed'): Promise<Outside> {
  const names = rt.namesFor(scenarioId);
  const tag = randomBytes(3).toString('hex');
  const ns = `fgt-out-${tag}`;
  const sw = names.switchNs();
  const swPort = `xo${tag}`;
  sh('ip', ['netns', 'add', ns]);
  t.after(() => {
    sh('ip', ['netns', 'del', ns]);
  });
  const batch = (target: string, lines: string[]): void => {
    sh('sh', ['-c', `printf '%s\\n' "$1" | ip -n ${target} -batch -`, 'x', lines.join('\n')]);
  };
  batch(ns, ['link set lo up', `link add o0 type veth peer name ${swPort} netns ${sw}`, 'link set o0 up']);
  if (mode === 'bridge') {
    batch(ns, [`addr add ${OUTSIDE}/24 dev o0`, `route add ${lan(0)} dev o0`]);
    batch(sw, [`link set ${swPort} master ${names.bridge(0)}`, `link set ${swPort} up`]);
  } else {
    batch(ns, [`addr add ${OUTSIDE}/30 dev o0`, `route add ${lan(0)} via 198.51.100.2`]);
    batch(sw, [`addr add 198.51.100.2/30 dev ${swPort}`, `link set ${swPort} up`, `addr add ${lan(254)}/24 dev ${names.bridge(0)}`]);
    sh('ip', ['netns', 'exec', sw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  }
  const server = spawn(
    'nsenter',
    [
      `--net=/run/netns/${ns}`,
      process.execPath,
      '-e',
      "require('net').createServer((s)=>{console.log('conn');s.end('outside\\n')}).listen(8080,'0.0.0.0',()=>console.log('up'))",
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.after(() => server.kill('SIGKILL'));
  let out = '';
  server.stdout.on('data', (b: Buffer) => (out += b.toString()));
  await waitFor('the outside listener', 5000, async () => (out.includes('up') ? true : undefined));
  return {
    routeCmd: mode === 'bridge' ? 'ip route replace 198.51.100.0/24 dev eth0' : `ip route replace 198.51.100.0/24 via ${lan(254)}`,
    connections: () => (out.match(/^conn$/gm) ?? []).length,
  };
}

/** As the learner: drop the device's own firewall, point a route at the outside, connect. */
async function learnerConnects(
  rt: NetnsLabRuntime,
  id: string,
  dev: string,
  outside: Outside,
  port: number,
  extra = '',
): Promise<{ ok: boolean; out: string }> {
  const script = `nft flush ruleset && ${outside.routeCmd} && ${extra || 'true'} && timeout 2 bash -c 'exec 3<>/dev/tcp/${OUTSIDE}/${port} && cat <&3'`;
  const res = await rt.exec(id, dev, ['/bin/bash', '-c', script], { asLearner: true, timeoutMs: 5000 });
  return { ok: res.exitCode === 0, out: res.stdout + res.stderr };
}

for (const mode of ['bridge', 'routed'] as const) {
  test(`${mode}: the learner, root over its own network, still cannot reach an outside host`, async (t) => {
    const rt = makeRuntime(t);
    const id = uniqueId(`egress-${mode}`);
    const lan = subnet();
    await rt.create(spec(id, lan, false));
    const outside = await outsideHost(t, rt, id, lan, mode);
    const attempts = await Promise.all([
      learnerConnects(rt, id, 'a', outside, 8080),
      // Even with an address in the outside's own subnet (bridge: on the same wire).
      learnerConnects(rt, id, 'b', outside, 8080, mode === 'bridge' ? 'ip addr add 198.51.100.9/24 dev eth0' : ''),
    ]);
    for (const a of attempts) {
      assert.equal(a.ok, false, a.out);
      assert.doesNotMatch(a.out, /outside/);
    }
    const ping = await rt.exec(id, 'a', ['ping', '-c', '1', '-W', '1', OUTSIDE], { asLearner: true });
    assert.notEqual(ping.exitCode, 0);
    assert.equal(outside.connections(), 0);
  });

  test(`${mode}: with egress dry-run (dev only) the same outside host is reachable`, async (t) => {
    // The control for the test above: the wiring is real, only the switch ruleset stops it.
    const rt = makeRuntime(t, { egressDryRun: true });
    const id = uniqueId(`dryrun-${mode}`);
    const lan = subnet();
    const handle = await rt.create(spec(id, lan, false));
    assert.equal(handle.egress.dryRun, true);
    assert.match(handle.egress.rulesets['switch'] ?? '', /policy drop/);
    const loaded = sh('ip', ['netns', 'exec', rt.namesFor(id).switchNs(), 'nft', 'list', 'ruleset']);
    assert.equal(loaded.trim(), '', 'dry-run applies nothing');
    const outside = await outsideHost(t, rt, id, lan, mode);
    const open = await waitFor('a connection through the open lab', 5000, async () => {
      const r = await learnerConnects(rt, id, 'a', outside, 8080);
      return r.ok ? r : undefined;
    });
    assert.match(open.out, /outside/);
    assert.ok(outside.connections() >= 1);
  });
}

test("the template profile's allowlist opens exactly its port, from its devices", async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('egress-allow');
  const lan = subnet();
  const handle = await rt.create(spec(id, lan, true));
  assert.equal(handle.egress.dryRun, false);
  const outside = await outsideHost(t, rt, id, lan, 'bridge');

  const allowed = await learnerConnects(rt, id, 'a', outside, 8080);
  assert.ok(allowed.ok, allowed.out);
  assert.match(allowed.out, /outside/);
  const [wrongPort, otherDevice] = await Promise.all([learnerConnects(rt, id, 'a', outside, 8081), learnerConnects(rt, id, 'b', outside, 8080)]);
  // Dropped silently by the switch (a refusal would be the outside's RST).
  assert.equal(wrongPort.ok, false);
  assert.doesNotMatch(wrongPort.out, /refused|outside/i);
  assert.equal(otherDevice.ok, false, 'rule is limited to device a');
  assert.doesNotMatch(otherDevice.out, /outside/);
  const ping = await rt.exec(id, 'a', ['ping', '-c', '1', '-W', '1', OUTSIDE], { asLearner: true });
  assert.notEqual(ping.exitCode, 0);
  assert.equal(outside.connections(), 1);
});

test('switch ruleset text: drop policies, own networks, multicast, allowlist by ingress port', () => {
  const s: LabSpec = {
    scenarioId: 'x',
    networks: [
      { name: 'n1', cidr: '10.1.0.0/24' },
      { name: 'n2', cidr: '10.2.0.0/24' },
    ],
    devices: [
      { name: 'h', kind: 'host', interfaces: [{ network: 'n1', address: '10.1.0.5/24' }] },
      { name: 'svc', kind: 'host', interfaces: [{ network: 'n2', address: '10.2.0.7/24' }] },
      {
        name: 'r',
        kind: 'router',
        interfaces: [
          { network: 'n1', address: '10.1.0.1/24' },
          { network: 'n2', address: '10.2.0.1/24' },
        ],
      },
    ],
    egress: {
      name: 'p',
      allow: [
        { device: 'svc', proto: 'tcp', port: 443 },
        { cidr: '198.51.100.0/24', proto: 'udp', port: 53, from: ['r', 'h'] },
      ],
    },
  };
  const text = buildSwitchRuleset({ spec: s, table: 'fg_t', ports: { h: ['v-00'], svc: ['v-10'], r: ['v-20', 'v-21'] } });
  assert.match(text, /table bridge fg_t \{/);
  assert.match(text, /meta mark set iifname map \{ "v-00" : 1, "v-10" : 2, "v-20" : 3, "v-21" : 3 \}/);
  assert.match(text, /chain forward \{\n\s+type filter hook forward priority -200; policy drop;\n\s+ether type arp accept\n\s+ether type ip accept/);
  assert.match(text, /chain input \{\n\s+type filter hook input priority -200; policy drop;\n\s+\}/);
  assert.match(text, /table inet fg_t \{\n\s+chain forward \{\n\s+type filter hook forward priority 0; policy drop;\n\s+ct state established,related accept/);
  assert.match(text, /ip saddr \{ 10\.1\.0\.0\/24, 10\.2\.0\.0\/24 \} ip daddr \{ 10\.1\.0\.0\/24, 10\.2\.0\.0\/24 \} accept/);
  assert.match(text, /ip daddr \{ 224\.0\.0\.0\/24, 255\.255\.255\.255 \} accept/);
  assert.match(text, /\n\s+ip daddr 10\.2\.0\.7 tcp dport 443 accept/);
  assert.match(text, /meta mark \{ 3, 1 \} ip daddr 198\.51\.100\.0\/24 udp dport 53 accept/);
});
