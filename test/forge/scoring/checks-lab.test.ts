import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LabSpec } from '../../../src/forge/runtime/types.js';
import { evaluateCriteria, type CriterionResult } from '../../../src/forge/scoring/criteria.js';
import { labExec } from '../../../src/forge/scoring/service.js';
import type { SuccessCriterion } from '../../../src/forge/templates/schema.js';
import { makeRuntime, subnet, uniqueId } from '../runtime/helpers.js';

/**
 * Every check type, passing and failing, against one real lab (labs are slow to build: one lab
 * carries them all). Two LANs: h1 - r1 - (r2, h2). r1 and r2 run OSPF and eBGP; h2 serves HTTP
 * (socat) and DNS (dnsmasq) started as the learner; r1 has a learner nftables ACL.
 */
function checksLab(scenarioId: string) {
  const a = subnet();
  let b = subnet();
  while (b(0) === a(0)) b = subnet();
  const fast = ' ip ospf hello-interval 1\n ip ospf dead-interval 3\n';
  const spec: LabSpec = {
    scenarioId,
    networks: [
      { name: 'lan-a', cidr: a(0) },
      { name: 'lan-b', cidr: b(0) },
    ],
    devices: [
      { name: 'h1', kind: 'host', interfaces: [{ network: 'lan-a', address: `${a(10)}/24` }], routes: [{ to: 'default', via: a(1) }] },
      {
        name: 'r1',
        kind: 'router',
        interfaces: [
          { network: 'lan-a', address: `${a(1)}/24` },
          { network: 'lan-b', address: `${b(1)}/24` },
        ],
        frrConfig:
          `frr defaults traditional\ninterface eth1\n${fast}router ospf\n ospf router-id ` +
          `1.1.1.1\n network ${a(0)} area 0\n network ${b(0)} area 0\nrouter bgp ` +
          `65001\n bgp router-id 1.1.1.1\n no bgp ebgp-requires-policy\n timers bgp 1 ` +
          `3\n neighbor ${b(2)} remote-as 65002\n neighbor ${b(2)} timers connect 1\n`,
        startup: [
          "nft add table inet acl && nft add chain inet acl filter_fwd '{ type filter hook forward " +
            "priority 0; policy accept; }' && nft add rule inet acl filter_fwd tcp dport 23 drop",
        ],
      },
      {
        name: 'r2',
        kind: 'router',
        interfaces: [{ network: 'lan-b', address: `${b(2)}/24` }],
        frrConfig:
          `frr defaults traditional\ninterface eth0\n${fast}router ospf\n ospf router-id ` +
          `2.2.2.2\n network ${b(0)} area 0\nrouter bgp 65002\n bgp router-id 2.2.2.2\n no bgp ` +
          `ebgp-requires-policy\n timers bgp 1 3\n neighbor ${b(1)} remote-as 65001\n neighbor ${b(1)} ` +
          `timers connect 1\n address-family ipv4 unicast\n  network ${b(0)}\n exit-address-family\n`,
      },
      {
        name: 'h2',
        kind: 'host',
        interfaces: [{ network: 'lan-b', address: `${b(20)}/24` }],
        routes: [{ to: 'default', via: b(1) }],
        files: [
          { path: '/root/notes.txt', content: 'incident 42 closed\n', mode: 0o600 },
          { path: '/root/reply.http', content: 'HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nhello-lab\n' },
        ],
        startup: [
          `setsid socat TCP-LISTEN:8080,bind=${b(20)},fork,reuseaddr SYSTEM:'cat /root/reply.http' </dev/null >/dev/null 2>&1 &`,
          `dnsmasq --port=53 --listen-address=${b(20)} --bind-interfaces --no-resolv --no-hosts ` +
            `--address=/www.lab.test/${b(20)} --pid-file=/tmp/dnsmasq.pid --user=root --group=`,
        ],
      },
    ],
  };
  return { spec, a, b };
}

const NOTES_SHA256 = '5b0f7bd6c7f1a8b88a3cdb3e3fd1a2b6c0f6b08e0ed3b2a0b7fc8d0c5e0d0a11';

test('every check type passes on the right state and fails on the wrong one, on a real lab', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('checks');
  const { spec, a, b } = checksLab(id);
  await rt.create(spec);
  const { createHash } = await import('node:crypto');
  const notesSha = createHash('sha256').update('incident 42 closed\n').digest('hex');
  assert.notEqual(notesSha, NOTES_SHA256);

  // [criterion, expected status]
  const cases: Array<[SuccessCriterion, CriterionResult['status']]> = [];
  const add = (id: string, check: Record<string, unknown>, expected: CriterionResult['status'], extra: Partial<SuccessCriterion> = {}) =>
    cases.push([{ id, description: id, points: 10, check: check as SuccessCriterion['check'], ...extra }, expected]);
  const quick = { timeout_s: 3 };
  const converge = { wait_s: 45, interval_s: 0.5 };

  add('command-pass', { type: 'command', device: 'h1', run: 'ip -4 route show default', expect_stdout: `default via ${a(1)}` }, 'passed');
  add(
    'command-json-pass',
    { type: 'command', device: 'h1', run: ['ip', '-j', '-4', 'addr', 'show', 'eth0'], json_path: '$[0].addr_info[0].local', json_equals: a(10) },
    'passed',
  );
  add('command-fail', { type: 'command', device: 'h1', run: 'ip -4 route show default', stdout_regex: `via ${b(1).replace(/\./g, '\\.')}` }, 'failed');
  add('command-exit-fail', { type: 'command', device: 'h1', run: 'exit 3', context: 'learner' }, 'failed');
  add(
    'file-pass',
    { type: 'file', device: 'h2', path: '/root/notes.txt', regex: 'incident \\d+ closed', mode: '0600', owner: 'root', sha256: notesSha },
    'passed',
  );
  add('file-absent-pass', { type: 'file', device: 'h1', path: '/root/notes.txt', state: 'absent' }, 'passed');
  add('file-fail', { type: 'file', device: 'h2', path: '/root/notes.txt', sha256: NOTES_SHA256 }, 'failed');
  add('file-mode-fail', { type: 'file', device: 'h2', path: '/root/notes.txt', mode: '0644' }, 'failed');
  add('iface-pass', { type: 'interface_addr', device: 'r1', interface: 'eth1', address: `${b(1)}/24` }, 'passed');
  add('iface-fail', { type: 'interface_addr', device: 'r1', interface: 'eth0', address: `${b(1)}/24` }, 'failed');
  add('route-kernel-pass', { type: 'route', device: 'h2', prefix: 'default', via: b(1), interface: 'eth0' }, 'passed');
  add('route-kernel-fail', { type: 'route', device: 'h2', prefix: a(0), via: b(2) }, 'failed');
  add('ospf-pass', { type: 'ospf_neighbor', device: 'r1', neighbor: '2.2.2.2', ...converge }, 'passed');
  add('ospf-fail', { type: 'ospf_neighbor', device: 'r1', neighbor: '9.9.9.9' }, 'failed');
  add('route-frr-pass', { type: 'route', device: 'r2', prefix: a(0), via: b(1), source: 'frr', protocol: 'ospf', ...converge }, 'passed');
  add('route-frr-fail', { type: 'route', device: 'r2', prefix: a(0), source: 'frr', protocol: 'static' }, 'failed');
  add('bgp-pass', { type: 'bgp_session', device: 'r1', peer: b(2), min_prefixes: 1, ...converge }, 'passed');
  add('bgp-fail', { type: 'bgp_session', device: 'r1', peer: b(20) }, 'failed');
  add('reach-icmp-pass', { type: 'reachability', from: 'h1', to: b(20), ...converge }, 'passed');
  add('reach-icmp-fail', { type: 'reachability', from: 'h1', to: a(99), ...quick }, 'failed');
  add('reach-tcp-pass', { type: 'reachability', from: 'h1', to: `${b(20)}:8080`, ...converge }, 'passed');
  add('reach-tcp-blocked-pass', { type: 'reachability', from: 'h1', to: `${b(20)}:23`, expect: 'no_reach', ...quick }, 'passed');
  add('reach-tcp-fail', { type: 'reachability', from: 'h1', to: `${b(20)}:8081`, ...quick }, 'failed');
  add('listening-pass', { type: 'listening', device: 'h2', port: 8080, address: b(20), process: 'socat' }, 'passed');
  add('listening-fail', { type: 'listening', device: 'h2', port: 8443 }, 'failed');
  add('process-pass', { type: 'process', device: 'h2', name: 'dnsmasq', cmdline_regex: 'www\\.lab\\.test' }, 'passed');
  add('process-absent-fail', { type: 'process', device: 'h2', name: 'socat', state: 'absent' }, 'failed');
  add('sysctl-pass', { type: 'sysctl', device: 'r1', key: 'net.ipv4.ip_forward', equals: '1' }, 'passed');
  add('sysctl-fail', { type: 'sysctl', device: 'h1', key: 'net.ipv4.ip_forward', equals: '1' }, 'failed');
  add('dns-pass', { type: 'dns', from: 'h1', server: b(20), name: 'www.lab.test', expect: [b(20)], ...converge }, 'passed');
  add('dns-fail', { type: 'dns', from: 'h1', server: b(20), name: 'www.lab.test', expect: [a(20)], ...quick }, 'failed');
  add('http-pass', { type: 'http', from: 'h1', url: `http://${b(20)}:8080/`, body_regex: 'hello-lab', ...converge }, 'passed');
  add('http-fail', { type: 'http', from: 'h1', url: `http://${b(20)}:8080/`, body_regex: 'goodbye', ...quick }, 'failed');
  add('nft-pass', { type: 'nft_rule', device: 'r1', table: 'acl', chain: 'filter_fwd', regex: 'tcp dport 23 drop' }, 'passed');
  add('nft-fail', { type: 'nft_rule', device: 'r1', regex: 'tcp dport 22 accept' }, 'failed');
  add('answer-pass', { type: 'answer', question: 'Which port?', exact: ['23', 'telnet'] }, 'passed');
  add('answer-fail', { type: 'answer', question: 'Which flag?', variable: 'flag' }, 'failed');
  add(
    'quiz-pass',
    {
      type: 'quiz',
      questions: [
        { id: 'q1', kind: 'choice', prompt: 'CIA?', choices: ['c', 'i', 'x'], correct: [0, 1] },
        { id: 'q2', kind: 'matching', prompt: 'match', pairs: { ssh: '22', dns: '53' } },
      ],
    },
    'passed',
  );
  add('quiz-fail', { type: 'quiz', questions: [{ id: 'q1', kind: 'choice', prompt: 'port of https?', choices: ['80', '443'], correct: [1] }] }, 'failed');
  // Combinators, dependencies, hints.
  add(
    'all-fail',
    {
      type: 'all',
      checks: [
        { type: 'sysctl', device: 'r1', key: 'net.ipv4.ip_forward', equals: '1' },
        { type: 'sysctl', device: 'h1', key: 'net.ipv4.ip_forward', equals: '1' },
      ],
    },
    'failed',
  );
  add(
    'any-pass',
    {
      type: 'any',
      checks: [
        { type: 'sysctl', device: 'h1', key: 'net.ipv4.ip_forward', equals: '1' },
        { type: 'sysctl', device: 'r1', key: 'net.ipv4.ip_forward', equals: '1' },
      ],
    },
    'passed',
  );
  add(
    'at-least-pass',
    {
      type: 'at_least',
      k: 2,
      checks: [
        { type: 'sysctl', device: 'r1', key: 'net.ipv4.ip_forward', equals: '1' },
        { type: 'sysctl', device: 'r2', key: 'net.ipv4.ip_forward', equals: '1' },
        { type: 'sysctl', device: 'h1', key: 'net.ipv4.ip_forward', equals: '1' },
      ],
    },
    'passed',
  );
  add('depends-skipped', { type: 'command', device: 'h1', run: 'true' }, 'skipped', { depends_on: ['command-fail'] });
  add('depends-passed', { type: 'command', device: 'h1', run: 'true' }, 'passed', {
    depends_on: ['command-pass'],
    hints: [
      { text: 'look at ip route', penalty: 4 },
      { text: 'free', penalty: 0 },
    ],
  });

  const results = await evaluateCriteria({
    criteria: cases.map(([c]) => c),
    exec: labExec(rt, id),
    answers: { 'answer-pass': ' Telnet ', 'answer-fail': 'FLAG{guess}', 'quiz-pass': { q1: [1, 0], q2: { ssh: '22', dns: '53' } }, 'quiz-fail': { q1: 0 } },
    variables: { flag: 'FLAG{abc}' },
    hintsUsed: { 'depends-passed': [0] },
  });
  const byId = new Map(results.map((r) => [r.id, r]));
  const wrong = cases
    .map(([c, expected]) => ({ id: c.id, expected, got: byId.get(c.id)?.status, detail: byId.get(c.id)?.detail }))
    .filter((r) => r.got !== r.expected);
  assert.deepEqual(wrong, [], JSON.stringify(wrong, null, 2));

  // Scoring details: penalty from the revealed hint, nothing awarded for skipped or failed.
  assert.equal(byId.get('depends-passed')!.awarded, 6);
  assert.equal(byId.get('depends-passed')!.penalty, 4);
  assert.equal(byId.get('depends-skipped')!.awarded, 0);
  assert.equal(byId.get('depends-skipped')!.outcome, undefined, 'a skipped criterion runs nothing');
  // Captured output: argv, timestamps, exit code, stdout with its SHA-256.
  const cmd = byId.get('command-pass')!.outcome!.commands[0]!;
  assert.deepEqual(cmd.argv, ['/bin/sh', '-c', 'ip -4 route show default']);
  assert.equal(cmd.context, 'net');
  assert.equal(cmd.exit_code, 0);
  assert.match(cmd.stdout.text, new RegExp(`default via ${a(1).replace(/\./g, '\\.')}`));
  assert.equal(cmd.stdout.sha256, createHash('sha256').update(cmd.stdout.text).digest('hex'));
  assert.ok(Date.parse(cmd.ended_at) >= Date.parse(cmd.started_at));
});

test('checks run host binaries: a learner replacing ip, vtysh or sysctl in the device cannot fake a result', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('tamper');
  const { spec, b } = checksLab(id);
  await rt.create({ ...spec, devices: spec.devices.filter((d) => d.name === 'h1' || d.name === 'r1').map((d) => ({ ...d, startup: [] })) });
  // The learner shadows tools with fakes on every path it can write to, and puts them first in PATH.
  const fake = '#!/bin/sh\necho "default via 10.66.66.66 dev eth0"\necho 1\nexit 0\n';
  const plant = await rt.exec(
    id,
    'h1',
    [
      '/bin/sh',
      '-c',
      `for d in /root/bin /usr/local/bin /tmp; do mkdir -p $d 2>/dev/null; for t in ip sysctl vtysh ping; do printf '%s' '${fake}' > ` +
        `$d/$t 2>/dev/null && chmod +x $d/$t 2>/dev/null; done; done; echo 'export PATH=/tmp:/root/bin:$PATH' >> /root/.profile; true`,
    ],
    { asLearner: true },
  );
  assert.equal(plant.exitCode, 0, plant.stderr);
  const results = await evaluateCriteria({
    criteria: [
      { id: 'gw', description: 'gw', points: 1, check: { type: 'route', device: 'h1', prefix: 'default', via: '10.66.66.66' } as SuccessCriterion['check'] },
      {
        id: 'fwd',
        description: 'fwd',
        points: 1,
        check: { type: 'sysctl', device: 'h1', key: 'net.ipv4.ip_forward', equals: '1' } as SuccessCriterion['check'],
      },
      { id: 'ping', description: 'ping', points: 1, check: { type: 'reachability', from: 'h1', to: b(99), timeout_s: 3 } as SuccessCriterion['check'] },
    ],
    exec: labExec(rt, id),
  });
  assert.deepEqual(
    results.map((r) => [r.id, r.status]),
    [
      ['gw', 'failed'],
      ['fwd', 'failed'],
      ['ping', 'failed'],
    ],
  );
});
