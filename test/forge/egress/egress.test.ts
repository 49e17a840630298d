import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { buildDeviceRuleset } from '../../../src/forge/egress/index.js';
import type { LabSpec, NetnsLabRuntime } from '../../../src/forge/runtime/index.js';
import { makeRuntime, sh, subnet, uniqueId, waitFor } from '../runtime/helpers.js';

function spec(scenarioId: string, allow: boolean): LabSpec {
  const lan = subnet();
  return {
    scenarioId,
    networks: [{ name: 'lan', cidr: lan(0) }],
    devices: [
      { name: 'a', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(10)}/24` }] },
      { name: 'b', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(11)}/24` }] },
    ],
    egress: { name: 'test', allow: allow ? [{ cidr: '192.0.2.0/29', proto: 'tcp', port: 8080, from: ['a'] }] : [] },
  };
}

/**
 * An "outside" host: a namespace this test creates, wired by veth straight into devices a and b
 * (192.0.2.1 <-> a at .2, 192.0.2.5 <-> b at .6), with a TCP listener on 8080.
 */
async function outsideHost(t: TestContext, rt: NetnsLabRuntime, scenarioId: string): Promise<void> {
  const ns = `fgt-out-${randomBytes(4).toString('hex')}`;
  sh('ip', ['netns', 'add', ns]);
  t.after(() => {
    sh('ip', ['netns', 'del', ns]);
  });
  const batch = [
    'link set lo up',
    `link add oa type veth peer name ext0 netns ${rt.netnsOf(scenarioId, 'a')}`,
    `link add ob type veth peer name ext0 netns ${rt.netnsOf(scenarioId, 'b')}`,
    'addr add 192.0.2.1/30 dev oa',
    'addr add 192.0.2.5/30 dev ob',
    'link set oa up',
    'link set ob up',
  ].join('\n');
  sh('sh', ['-c', `printf '%s\\n' "$1" | ip -n ${ns} -batch -`, 'x', batch]);
  for (const [dev, addr] of [['a', '192.0.2.2/30'], ['b', '192.0.2.6/30']] as const) {
    sh('ip', ['-n', rt.netnsOf(scenarioId, dev), 'addr', 'add', addr, 'dev', 'ext0']);
    sh('ip', ['-n', rt.netnsOf(scenarioId, dev), 'link', 'set', 'ext0', 'up']);
  }
  const server = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '-e', "require('net').createServer((s)=>s.end('outside\\n')).listen(8080,'0.0.0.0',()=>console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => server.kill('SIGKILL'));
  await new Promise<void>((r) => server.stdout.once('data', () => r()));
}

async function tcp(rt: NetnsLabRuntime, id: string, dev: string, addr: string, port: number): Promise<{ ok: boolean; out: string }> {
  // The test's veth may still be coming up: retry only while the kernel says there is no route.
  const res = await waitFor(`link on ${dev}`, 3000, async () => {
    const r = await rt.exec(id, dev, ['/bin/bash', '-c', `exec 3<>/dev/tcp/${addr}/${port} && cat <&3`], { asLearner: true, timeoutMs: 1500 });
    return /No route|unreachable/i.test(r.stderr) ? undefined : r;
  });
  return { ok: res.exitCode === 0, out: res.stdout + res.stderr };
}

test('egress to an outside host is dropped unless the profile allows it', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('egress');
  await rt.create(spec(id, true));
  await outsideHost(t, rt, id);

  const allowed = await tcp(rt, id, 'a', '192.0.2.1', 8080);
  assert.ok(allowed.ok, allowed.out);
  assert.match(allowed.out, /outside/);
  const wrongPort = await tcp(rt, id, 'a', '192.0.2.1', 8081);
  // Dropped silently by the output policy (a refusal would come from the peer's RST).
  assert.equal(wrongPort.ok, false);
  assert.doesNotMatch(wrongPort.out, /refused|outside/i);
  const ping = await rt.exec(id, 'a', ['ping', '-c', '1', '-W', '1', '192.0.2.1'], { asLearner: true });
  assert.notEqual(ping.exitCode, 0);
  const otherDevice = await tcp(rt, id, 'b', '192.0.2.5', 8080);
  assert.equal(otherDevice.ok, false, 'rule is limited to device a');
  assert.doesNotMatch(otherDevice.out, /outside/);
});

test('dry-run computes the rulesets but applies nothing (dev only)', async (t) => {
  const rt = makeRuntime(t, { egressDryRun: true });
  const id = uniqueId('dryrun');
  const handle = await rt.create(spec(id, false));
  assert.equal(handle.egress.dryRun, true);
  assert.match(handle.egress.rulesets['a'] ?? '', /policy drop/);
  const rules = await rt.exec(id, 'a', ['nft', 'list', 'ruleset'], {});
  assert.equal(rules.stdout.trim(), '');
  await outsideHost(t, rt, id);
  const open = await tcp(rt, id, 'b', '192.0.2.5', 8080);
  assert.ok(open.ok, 'with dry-run nothing is enforced, which is why production refuses it');
});

test('ruleset text: drop policy, own networks, multicast, allowlist, forward chain on routers', () => {
  const s: LabSpec = {
    scenarioId: 'x',
    networks: [{ name: 'n1', cidr: '10.1.0.0/24' }, { name: 'n2', cidr: '10.2.0.0/24' }],
    devices: [
      { name: 'h', kind: 'host', interfaces: [{ network: 'n1', address: '10.1.0.5/24' }] },
      { name: 'svc', kind: 'host', interfaces: [{ network: 'n2', address: '10.2.0.7/24' }] },
      { name: 'r', kind: 'router', interfaces: [{ network: 'n1', address: '10.1.0.1/24' }, { network: 'n2', address: '10.2.0.1/24' }] },
    ],
    egress: { name: 'p', allow: [{ device: 'svc', proto: 'tcp', port: 443 }, { cidr: '198.51.100.0/24', proto: 'udp', port: 53, from: ['r'] }] },
  };
  const host = buildDeviceRuleset({ spec: s, device: 'h', table: 'fg_t_h' });
  assert.match(host, /table inet fg_t_h \{/);
  assert.match(host, /chain output \{\n\s+type filter hook output priority 0; policy drop;/);
  assert.match(host, /ip daddr \{ 10\.1\.0\.0\/24, 10\.2\.0\.0\/24 \} accept/);
  assert.match(host, /ip daddr 10\.2\.0\.7 tcp dport 443 accept/);
  assert.doesNotMatch(host, /udp dport 53/);
  assert.doesNotMatch(host, /chain forward/);
  const router = buildDeviceRuleset({ spec: s, device: 'r', table: 'fg_t_r' });
  assert.match(router, /chain forward \{\n\s+type filter hook forward priority 0; policy drop;/);
  assert.match(router, /ip daddr 198\.51\.100\.0\/24 udp dport 53 accept/);
  assert.match(router, /ip daddr 224\.0\.0\.0\/24 accept/);
});
