import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectiveNftRules, parseNftHooks, parseNftRules, parseSs } from '../../../src/forge/scoring/checks/network.js';
import { parseDig } from '../../../src/forge/scoring/checks/service.js';
import { jsonPathValue, parsePs } from '../../../src/forge/scoring/checks/state.js';
import { captureStream } from '../../../src/forge/scoring/capture.js';

// The tools' output formats that the lab tests do not happen to produce.

test('nft ruleset: rules with their table and chain; chain headers, sets, multi-line elements and fg_* tables are not rules', () => {
  const text = `table inet fg_1c89528e_h1 {
	chain egress {
		type filter hook output priority filter; policy drop;
		ip daddr 10.0.0.0/8 accept
	}
}
table inet acl {
	set blocked {
		type ipv4_addr
		elements = { 10.9.9.1,
			     10.9.9.2 }
	}

	chain forward_acl {
		type filter hook forward priority filter; policy accept;
		ip saddr @blocked drop
		tcp dport { 22, 23 } counter packets 0 bytes 0 drop
	}
}
table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth1" masquerade
	}
}
`;
  assert.deepEqual(parseNftRules(text), [
    { family: 'inet', table: 'acl', chain: 'forward_acl', rule: 'ip saddr @blocked drop' },
    { family: 'inet', table: 'acl', chain: 'forward_acl', rule: 'tcp dport { 22, 23 } counter packets 0 bytes 0 drop' },
    { family: 'ip', table: 'nat', chain: 'post', rule: 'oifname "eth1" masquerade' },
  ]);
});

test('ss listening sockets: addresses (v4, wildcard, v6, scoped) and process names', () => {
  const text = [
    'LISTEN 0      4096         0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=88,fd=3))',
    'LISTEN 0      32       10.1.0.20%eth0:53        0.0.0.0:*    users:(("dnsmasq",pid=90,fd=5),("dnsmasq",pid=91,fd=5))',
    'LISTEN 0      511              [::]:80           [::]:*    users:(("nginx",pid=7,fd=6))',
    'UNCONN 0      0                   *:5353            *:*',
  ].join('\n');
  assert.deepEqual(parseSs(text), [
    { address: '0.0.0.0', port: 22, processes: ['sshd'] },
    { address: '10.1.0.20', port: 53, processes: ['dnsmasq', 'dnsmasq'] },
    { address: '::', port: 80, processes: ['nginx'] },
    { address: '*', port: 5353, processes: [] },
  ]);
});

test('dig: status and the answer section only', () => {
  const text = `; <<>> DiG 9.18 <<>> @10.1.0.20 www.lab.test A
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; QUESTION SECTION:
;www.lab.test.			IN	A

;; ANSWER SECTION:
www.lab.test.		0	IN	CNAME	web.lab.test.
web.lab.test.		0	IN	A	10.1.0.20

;; AUTHORITY SECTION:
lab.test.		0	IN	NS	ns.lab.test.
`;
  assert.deepEqual(parseDig(text), {
    status: 'NOERROR',
    answers: [
      { type: 'CNAME', value: 'web.lab.test.' },
      { type: 'A', value: '10.1.0.20' },
    ],
  });
  assert.deepEqual(parseDig(';; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n'), { status: 'NXDOMAIN', answers: [] });
  assert.equal(parseDig(';; connection timed out; no servers could be reached\n').status, undefined);
});

test('ps, JSON paths and captured streams', () => {
  assert.deepEqual(parsePs('    1 bash            /bin/bash -c trap\n  42 nc              nc -lvp 4444\n 43 kworker\n'), [
    { pid: 1, comm: 'bash', args: '/bin/bash -c trap' },
    { pid: 42, comm: 'nc', args: 'nc -lvp 4444' },
    { pid: 43, comm: 'kworker', args: '' },
  ]);
  assert.equal(jsonPathValue([{ a: { b: [1, { c: 'x' }] } }], '$[0].a.b[1].c'), 'x');
  assert.equal(jsonPathValue({ a: 1 }, '$.a.b'), undefined);
  assert.deepEqual(jsonPathValue({ a: [1, 2] }, '$'), { a: [1, 2] });

  const big = `${'é'.repeat(10_000)}tail`;
  const c = captureStream(big, 1001);
  assert.equal(c.truncated, true);
  assert.equal(c.bytes, Buffer.byteLength(big));
  assert.ok(Buffer.byteLength(c.text) <= 1001);
  assert.ok(!c.text.includes('\uFFFD'), 'cut on a character boundary');
  assert.equal(captureStream('short').truncated, false);
});

test('nft rules that take effect: hooked filter chains and the chains they jump to; not unhooked, bridge or other-hook chains', () => {
  const text = [
    'table inet acl {',
    '\tchain fwd {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    '\t\tjump telnet',
    '\t}',
    '\tchain telnet {',
    '\t\ttcp dport 23 drop',
    '\t}',
    '\tchain lonely {',
    '\t\ttcp dport 22 drop',
    '\t}',
    '\tchain out {',
    '\t\ttype filter hook output priority filter; policy accept;',
    '\t\ttcp dport 25 drop',
    '\t}',
    '\tchain mangle {',
    '\t\ttype route hook output priority mangle; policy accept;',
    '\t\ttcp dport 26 drop',
    '\t}',
    '}',
    'table bridge br {',
    '\tchain bfwd {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    '\t\ttcp dport 27 drop',
    '\t}',
    '}',
  ].join('\n');
  const rules = parseNftRules(text);
  const hooks = parseNftHooks(text);
  const at = (hook?: string) => effectiveNftRules(rules, hooks, hook).map((r) => `${r.family} ${r.chain}: ${r.rule}`);
  assert.deepEqual(at('forward'), ['inet fwd: jump telnet', 'inet telnet: tcp dport 23 drop']);
  assert.deepEqual(at(), ['inet fwd: jump telnet', 'inet telnet: tcp dport 23 drop', 'inet out: tcp dport 25 drop', 'bridge bfwd: tcp dport 27 drop']);
  assert.deepEqual(at('input'), []);
});
