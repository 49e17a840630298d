import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { evaluateCriteria } from '../../../src/forge/scoring/criteria.js';
import { labExec } from '../../../src/forge/scoring/service.js';
import { ContainerlabImportError, importContainerlab } from '../../../src/forge/templates/containerlab.js';
import { loadTemplate, type LabTemplate } from '../../../src/forge/templates/load.js';
import { toLabSpec } from '../../../src/forge/templates/to-spec.js';
import type { SuccessCriterion } from '../../../src/forge/templates/schema.js';
import { ROOT, runCli } from '../../helpers/cli.js';
import { makeRuntime, uniqueId } from '../runtime/helpers.js';

const FIXTURES = join(ROOT, 'test/fixtures/containerlab');
const fixture = (name: string) => readFile(join(FIXTURES, name), 'utf8');

function refusal(text: string): string[] {
  try {
    importContainerlab(text, 'inline.clab.yml');
  } catch (err) {
    assert.ok(err instanceof ContainerlabImportError, String(err));
    return [...err.problems];
  }
  assert.fail('the topology was imported');
}

test('br01 (linux nodes on a bridge): the bridge becomes one network, exec addresses the interfaces', async () => {
  const { template, warnings } = importContainerlab(await fixture('br01.clab.yml'), 'br01.clab.yml');
  assert.equal(template.id, 'br01');
  assert.deepEqual(template.topology.networks, [{ name: 'br-clab', cidr: '192.168.0.0/24' }]);
  assert.deepEqual(
    template.topology.devices.map((d) => [d.name, d.kind, d.interfaces.map((i) => `${i.network} ${i.address}`)]),
    [
      ['n1', 'host', ['br-clab 192.168.0.11/24']],
      ['n2', 'host', ['br-clab 192.168.0.12/24']],
      ['n3', 'host', ['br-clab 192.168.0.1/24']],
    ],
  );
  // `ip link set eth1 up` is the runtime's job: no startup line is left.
  assert.ok(template.topology.devices.every((d) => d.startup === undefined));
  assert.ok(
    warnings.some((w) => /n3:eth1 had no address; it was given 192\.168\.0\.1\/24/.test(w)),
    warnings.join('\n'),
  );
});

test('frr01 (FRR routers with bound configs): routers, per-link networks, interfaces renumbered in the FRR config', async () => {
  const readBound = (p: string) => {
    try {
      return readFileSync(join(FIXTURES, 'frr01', p), 'utf8');
    } catch {
      return undefined;
    }
  };
  const { template, warnings } = importContainerlab(await fixture('frr01/frr01.clab.yml'), 'frr01.clab.yml', { readBound, track: 'ccna', tier: 'pro' });
  assert.deepEqual([template.track, template.tier], ['ccna', 'pro']);
  assert.deepEqual(
    template.topology.networks.map((n) => `${n.name} ${n.cidr}`),
    [
      'router1-router2 192.168.1.0/24',
      'router1-router3 192.168.2.0/24',
      'router2-router3 192.168.3.0/24',
      'pc1-router1 192.168.11.0/24',
      'pc2-router2 192.168.12.0/24',
      'pc3-router3 192.168.13.0/24',
    ],
  );
  const r1 = template.topology.devices.find((d) => d.name === 'router1')!;
  assert.equal(r1.kind, 'router');
  assert.deepEqual(
    r1.interfaces.map((i) => i.address),
    ['192.168.1.1/24', '192.168.2.1/24', '192.168.11.1/24'],
  );
  // containerlab eth1..eth3 are FrostGate eth0..eth2, in the FRR config too (lo is untouched).
  assert.match(r1.frr_config!, /^interface eth2\n ip address 192\.168\.11\.1\/24$/m);
  assert.match(r1.frr_config!, /^ passive-interface eth2$/m);
  assert.match(r1.frr_config!, /^interface lo$/m);
  assert.doesNotMatch(r1.frr_config!, /eth3/);
  const pc1 = template.topology.devices.find((d) => d.name === 'pc1')!;
  assert.deepEqual([pc1.kind, pc1.routes], ['host', [{ to: 'default', via: '192.168.11.1' }]]);
  assert.ok(warnings.includes('node PC1 is named pc1'), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.startsWith('router1: interfaces renumbered eth1->eth0, eth2->eth1, eth3->eth2')));
});

test('ext-links (extended link format): per-endpoint ipv4, kind from defaults, forwarding node is a router, other exec lines kept', async () => {
  const { template } = importContainerlab(await fixture('ext-links.clab.yml'), 'ext-links.clab.yml');
  const byName = Object.fromEntries(template.topology.devices.map((d) => [d.name, d]));
  assert.equal(byName.gw!.kind, 'router');
  assert.equal(byName.gw!.frr_config, undefined, 'forwarding alone starts no FRR');
  assert.deepEqual(byName.gw!.interfaces, [
    { network: 'client-gw', address: '10.0.1.1/24' },
    { network: 'gw-server', address: '10.0.2.1/24' },
  ]);
  assert.deepEqual(byName.client!.routes, [{ to: '10.0.2.0/24', via: '10.0.1.1' }]);
  assert.deepEqual(byName.server!.startup, ['echo ready > /tmp/server-ready']);
  assert.deepEqual(template.successCriteria[0]!.check, { type: 'reachability', from: 'client', to: '10.0.2.20' });
});

test('other kinds and endpoints that leave the lab are refused, each named', async () => {
  const problems = refusal(await fixture('srlceos01.clab.yml'));
  assert.deepEqual(problems, [
    'topology.nodes.srl: kind "nokia_srlinux" is not supported; FrostGate imports only ' +
      'kinds linux and bridge (its devices are Linux network namespaces, not vendor images)',
    'topology.nodes.ceos: kind "arista_ceos" is not supported; FrostGate imports only ' +
      'kinds linux and bridge (its devices are Linux network namespaces, not vendor images)',
  ]);
  const base =
    'name: t1\ntopology:\n  nodes:\n    n1: { kind: linux }\n    n2: { kind: linux }\n    b1: ' +
    '{ kind: bridge }\n    b2: { kind: bridge }\n    o1: { kind: ovs-bridge }\n  links:\n';
  assert.deepEqual(
    refusal(`${base}    - endpoints: ["n1:eth1", "host:n1-eth1"]\n`).filter((p) => !p.includes('ovs-bridge')),
    ['topology.links[0].endpoints[1]: "host:n1-eth1" joins the lab to the machine running it; FrostGate labs are closed (egress is a template profile)'],
  );
  const more = refusal(
    `${base}    - { type: macvlan, endpoint: { node: n1, interface: eth1 }, host-interface: enp0s3 ` +
      `}\n    - endpoints: ["b1:eth1", "b2:eth1"]\n    - endpoints: ["n1:eth1", "ghost:eth1"]\n`,
  );
  assert.ok(
    more.some((p) => /^topology\.nodes\.o1: kind "ovs-bridge" is not supported/.test(p)),
    more.join('\n'),
  );
  assert.ok(more.includes('topology.links[0]: link type "macvlan" is not supported; only links between lab nodes (veth) convert'), more.join('\n'));
  assert.ok(
    more.includes('topology.links[1]: a link between two bridges (b1, b2) has no FrostGate equivalent; join the devices to one bridge'),
    more.join('\n'),
  );
  assert.ok(more.includes('topology.links[2].endpoints[1]: node "ghost" is not a convertible node of this topology'), more.join('\n'));
  assert.deepEqual(refusal('name: x\ntopology: {}\n'), ['not a containerlab topology: expected `topology.nodes` (a mapping of node names)']);
  const subnets = refusal(
    'name: t2\ntopology:\n  nodes:\n    a: { kind: linux, exec: ["ip addr add 10.1.1.1/24 dev eth1"] }\n    b: { ' +
      'kind: linux, exec: ["ip addr add 10.1.2.1/24 dev eth1"] }\n  links:\n    - endpoints: ["a:eth1", "b:eth1"]\n',
  );
  assert.deepEqual(subnets, ['link(s) of network a-b: addresses are in different subnets (10.1.1.0/24, 10.1.2.0/24)']);
});

test('frostgate template import: writes a skeleton that validates and runs; refuses other kinds with exit 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-clab-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'frr01.yaml');
  const res = await runCli(['template', 'import', join(FIXTURES, 'frr01/frr01.clab.yml'), '-o', out, '--track', 'ccna', '--id', 'ccna-frr01']);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^OK .*frr01\.clab\.yml -> .*frr01\.yaml: ccna-frr01@sha256-[0-9a-f]{16}, 6 devices, 6 networks$/m);
  assert.match(res.stderr, /^note: node PC1 is named pc1$/m);
  assert.match(await readFile(out, 'utf8'), /^# Imported from .*frr01\.clab\.yml \(containerlab topology "frr01"\)/);
  const validate = await runCli(['template', 'validate', out]);
  assert.equal(validate.code, 0, validate.stderr);
  assert.match(validate.stdout, /^OK .*: ccna-frr01@sha256-/m);

  const again = await runCli(['template', 'import', join(FIXTURES, 'frr01/frr01.clab.yml'), '-o', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists/);

  const refused = await runCli(['template', 'import', join(FIXTURES, 'srlceos01.clab.yml'), '--json']);
  assert.equal(refused.code, 1);
  const body = JSON.parse(refused.stdout) as { ok: boolean; errors: string[] };
  assert.equal(body.ok, false);
  assert.ok(body.errors.some((e) => e.includes('kind "nokia_srlinux" is not supported')));
  const usage = await runCli(['template', 'import', join(FIXTURES, 'br01.clab.yml'), '--track', 'ccnp']);
  assert.equal(usage.code, 2, usage.stderr);
  assert.match(usage.stderr, /--track must be one of netplus, ccna, cissp/);
});

/** A one-point criterion for the extra checks (the template schema types checks by `type` only). */
const crit = (id: string, description: string, check: Record<string, unknown> & { type: string }): SuccessCriterion => ({ id, description, points: 1, check });

/** Spawns an imported skeleton and runs its placeholder criterion (and any extra checks). */
async function spawnAndCheck(t: Parameters<typeof makeRuntime>[0], template: LabTemplate, extra: SuccessCriterion[] = []) {
  const rt = makeRuntime(t);
  const id = uniqueId('clab');
  await rt.create(toLabSpec(template, id));
  // The extra checks first: they wait for convergence; the placeholder criterion tries once.
  const results = await evaluateCriteria({
    criteria: [...extra, ...template.successCriteria],
    exec: labExec(rt, id),
    answers: {},
    variables: {},
    hintsUsed: {},
  });
  for (const r of results) assert.equal(r.status, 'passed', `${r.id}: ${r.detail}`);
}

test(
  'imported labs run on the netns runtime: br01 hosts reach each other, ' + 'ext-links client reaches the server through the gateway, frr01 converges OSPF',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fg-clab-run-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const skeleton = async (fixtureName: string, id: string) => {
      const file = join(dir, `${id}.yaml`);
      const res = await runCli(['template', 'import', join(FIXTURES, fixtureName), '-o', file, '--id', id]);
      assert.equal(res.code, 0, res.stderr);
      return loadTemplate(file);
    };
    const [br01, ext, frr01] = await Promise.all([
      skeleton('br01.clab.yml', 'clab-br01'),
      skeleton('ext-links.clab.yml', 'clab-ext'),
      skeleton('frr01/frr01.clab.yml', 'clab-frr01'),
    ]);
    await spawnAndCheck(t, br01, [crit('n3-n1', 'n3 (generated address) reaches n1', { type: 'reachability', from: 'n3', to: '192.168.0.11' })]);
    await spawnAndCheck(t, ext, [crit('startup', 'the kept exec line ran', { type: 'file', device: 'server', path: '/tmp/server-ready', regex: 'ready' })]);
    // frr01 routes PC1 -> PC3 only once OSPF (default timers, broadcast links) has converged.
    await spawnAndCheck(t, frr01, [
      crit('ospf', 'router1 has router3 as a full neighbour', { type: 'ospf_neighbor', device: 'router1', neighbor: '10.10.10.3', wait_s: 90, interval_s: 1 }),
      crit('pc1-pc3', 'pc1 reaches pc3 across OSPF', { type: 'reachability', from: 'pc1', to: '192.168.13.2', wait_s: 30 }),
    ]);
  },
);
