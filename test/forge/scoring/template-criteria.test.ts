import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr } from '../../../src/forge/runtime/ipv4.js';
import { parseTemplate } from '../../../src/forge/templates/load.js';
import { scenarioVariables } from '../../../src/forge/templates/variables.js';
import { TemplateInvalidError, type TemplateProblem } from '../../../src/forge/templates/errors.js';
import { toLabSpec } from '../../../src/forge/templates/to-spec.js';

const HEAD = `id: crit-lab
title: Criteria lab
track: ccna
tier: pro
ttl_minutes: 30
topology:
  networks: [{ name: lan, cidr: 10.1.0.0/24 }]
  devices:
    - name: r1
      kind: router
      interfaces: [{ network: lan, address: 10.1.0.1/24 }]
      frr_config: "hostname r1\\nrouter ospf\\n ospf router-id {{rid}}\\n"
    - name: h1
      kind: host
      interfaces: [{ network: lan, address: 10.1.0.10/24 }]
      files: [{ path: /root/flag.txt, content: "flag={{flag}} pw={{pw}} unknown={{nope}}" }]
      startup: ["echo {{flag}} > /tmp/flag"]
tasks: [Do it]
`;

function problemsOf(text: string): TemplateProblem[] {
  try {
    parseTemplate(text, 'crit.yaml');
  } catch (err) {
    assert.ok(err instanceof TemplateInvalidError, String(err));
    return [...err.problems];
  }
  assert.fail('the template was accepted');
}

function hasProblem(problems: readonly TemplateProblem[], path: string, message: RegExp): void {
  assert.ok(
    problems.some((p) => p.path === path && message.test(p.message)),
    `expected ${path}: ${message} in\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`,
  );
}

test('every check type, combinators, hints, dependencies and variables validate', () => {
  const t = parseTemplate(
    `${HEAD}variables:
  flag: { kind: token, length: 12, prefix: "FLAG{", suffix: "}" }
  pw: { kind: password, length: 20 }
  rid: { kind: ipv4, cidr: 10.9.0.0/24 }
  color: { kind: choice, values: [red, green, blue] }
successCriteria:
  - { id: cmd, description: d, points: 5, check: { type: command, device: h1, run: [ip, -j, addr], json_path: "$[0].ifname", json_equals: lo, wait_s: 5 } }
  - { id: file, description: d, points: 5, check: { type: file, device: h1, path: /root/flag.txt, regex: "flag=", mode: "0644", owner: root } }
  - { id: addr, description: d, points: 5, check: { type: interface_addr, device: h1, address: 10.1.0.10/24, interface: eth0 } }
  - { id: route, description: d, points: 5, check: { type: route, device: r1, prefix: 10.1.0.0/24, source: frr, protocol: connected } }
  - { id: reach, description: d, points: 5, check: { type: reachability, from: h1, to: "10.1.0.1:22", expect: no_reach } }
  - { id: ospf, description: d, points: 5, check: { type: ospf_neighbor, device: r1, neighbor: 2.2.2.2 } }
  - { id: bgp, description: d, points: 5, check: { type: bgp_session, device: r1, peer: 10.1.0.2, min_prefixes: 1 } }
  - { id: listen, description: d, points: 5, check: { type: listening, device: h1, port: 53, proto: udp } }
  - { id: proc, description: d, points: 5, check: { type: process, device: h1, name: sshd, state: absent } }
  - { id: sysctl, description: d, points: 5, check: { type: sysctl, device: r1, key: net.ipv4.ip_forward, equals: "1" } }
  - { id: dns, description: d, points: 5, check: { type: dns, from: h1, server: 10.1.0.1, name: a.lab, record: A, expect: [10.1.0.10] } }
  - { id: http, description: d, points: 5, check: { type: http, from: h1, url: "http://10.1.0.1/", status: 200 } }
  - { id: nft, description: d, points: 5, check: { type: nft_rule, device: r1, regex: "tcp dport 23 drop" } }
  - { id: ans, description: d, points: 5, check: { type: answer, question: q, variable: flag } }
  - id: quiz
    description: d
    points: 5
    check:
      type: quiz
      min_correct: 1
      questions:
        - { id: q1, kind: choice, prompt: p, choices: [a, b], correct: [1] }
        - { id: q2, kind: matching, prompt: p, pairs: { ssh: "22" } }
  - id: combo
    description: d
    points: 5
    depends_on: [cmd, file]
    hints: [{ text: look closer, penalty: 2 }]
    check: { type: at_least, k: 1, checks: [{ type: any, checks: [{ type: sysctl, device: h1, key: net.ipv4.ip_forward, equals: "0" }] }, { type: command, device: h1, run: "true" }] }
`,
    'crit.yaml',
  );
  assert.equal(t.successCriteria.length, 16);
  assert.equal(Object.keys(t.variables ?? {}).length, 4);
});

test('checks are validated against their own type: unknown types and fields, bad values, references', () => {
  const problems = problemsOf(`${HEAD}variables:
  flag: { kind: token }
successCriteria:
  - { id: a, description: d, points: 5, check: { type: teleport, device: h1 } }
  - { id: b, description: d, points: 5, check: { type: route, device: h1, prefix: default, gateway: 10.1.0.1 } }
  - { id: c, description: d, points: 5, check: { type: reachability, from: h9, to: 10.1.0.1 } }
  - { id: e, description: d, points: 5, check: { type: command, device: h1, run: "true", stdout_regex: "(" } }
  - { id: f, description: d, points: 5, check: { type: answer, question: q, variable: secret } }
  - { id: g, description: d, points: 5, check: { type: quiz, questions: [{ id: q1, kind: choice, prompt: p, choices: [a, b], correct: [2] }] } }
  - { id: h, description: d, points: 5, check: { type: at_least, k: 3, checks: [{ type: command, device: h1, run: "true" }] } }
  - { id: i, description: d, points: 5, depends_on: [j, zz], check: { type: command, device: h1, run: "true" } }
  - { id: j, description: d, points: 5, depends_on: [i], check: { type: command, device: h1, run: "true" } }
  - { id: k, description: d, points: 5, hints: [{ text: t, penalty: 6 }], check: { type: listening, device: h1 } }
`);
  hasProblem(problems, 'successCriteria[0].check.type', /must be one of command, file, .*at_least/);
  // Shape errors come first; the rest are checked once the shape is right.
  const semantic = problemsOf(`${HEAD}variables:
  flag: { kind: token }
successCriteria:
  - { id: b, description: d, points: 5, check: { type: route, device: h1, prefix: default, gateway: 10.1.0.1 } }
  - { id: c, description: d, points: 5, check: { type: reachability, from: h9, to: 10.1.0.1 } }
  - { id: e, description: d, points: 5, check: { type: command, device: h1, run: "true", stdout_regex: "(" } }
  - { id: f, description: d, points: 5, check: { type: answer, question: q, variable: secret } }
  - { id: g, description: d, points: 5, check: { type: quiz, questions: [{ id: q1, kind: choice, prompt: p, choices: [a, b], correct: [2] }] } }
  - { id: h, description: d, points: 5, check: { type: at_least, k: 3, checks: [{ type: command, device: h1, run: "true" }] } }
  - { id: i, description: d, points: 5, depends_on: [j, zz], check: { type: command, device: h1, run: "true" } }
  - { id: j, description: d, points: 5, depends_on: [i], check: { type: command, device: h1, run: "true" } }
  - { id: k, description: d, points: 5, hints: [{ text: t, penalty: 6 }], check: { type: listening, device: h1 } }
`);
  hasProblem(semantic, 'successCriteria[0].check.gateway', /is not a field of route checks/);
  hasProblem(semantic, 'successCriteria[1].check.from', /unknown device h9/);
  hasProblem(semantic, 'successCriteria[2].check.stdout_regex', /not a regular expression/);
  hasProblem(semantic, 'successCriteria[3].check.variable', /unknown variable secret/);
  hasProblem(semantic, 'successCriteria[4].check.questions[0].correct', /choice 2 does not exist/);
  hasProblem(semantic, 'successCriteria[5].check.k', /1\.\.1/);
  hasProblem(semantic, 'successCriteria[6].depends_on[0]', /cycle/);
  hasProblem(semantic, 'successCriteria[6].depends_on[1]', /unknown criterion zz/);
  hasProblem(semantic, 'successCriteria[8].check.port', /is required/);
  hasProblem(semantic, 'successCriteria[8].hints[0].penalty', /larger than the criterion's 5 points/);
});

test('per-scenario variables: deterministic per scenario and secret, different across scenarios, substituted into the lab', () => {
  const t = parseTemplate(
    `${HEAD}variables:
  flag: { kind: token, length: 12, prefix: "FLAG{", suffix: "}" }
  pw: { kind: password, length: 20 }
  rid: { kind: ipv4, cidr: 10.9.0.0/29 }
  color: { kind: choice, values: [red, green, blue] }
successCriteria:
  - { id: ans, description: d, points: 5, check: { type: answer, question: q, variable: flag } }
`,
    'vars.yaml',
  );
  const a = scenarioVariables(t.variables, 'scn_aaaaaaaaaaaa');
  assert.deepEqual(scenarioVariables(t.variables, 'scn_aaaaaaaaaaaa'), a, 'same scenario, same values');
  assert.match(a.flag!, /^FLAG\{[0-9a-f]{12}\}$/);
  assert.match(a.pw!, /^[A-HJ-NP-Za-km-z2-9]{20}$/);
  assert.ok(['red', 'green', 'blue'].includes(a.color!));
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const v = scenarioVariables(t.variables, `scn_many_${i}_xxxxxxxx`);
    seen.add(v.flag!);
    const host = parseCidr(`${v.rid}/32`)!.host;
    const net = parseCidr('10.9.0.0/29')!;
    assert.ok(host >= net.base + 2 && host <= net.base + 6, `${v.rid} is a host address of 10.9.0.0/29, not the first`);
  }
  assert.equal(seen.size, 200, 'flags differ between scenarios');
  assert.notEqual(
    scenarioVariables(t.variables, 'scn_aaaaaaaaaaaa', Buffer.from('deployment secret')).flag,
    a.flag,
    'the deployment secret changes every value',
  );

  const spec = toLabSpec(t, 'scn_aaaaaaaaaaaa');
  const h1 = spec.devices.find((d) => d.name === 'h1')!;
  assert.equal(h1.files![0]!.content, `flag=${a.flag} pw=${a.pw} unknown={{nope}}`);
  assert.deepEqual(h1.startup, [`echo ${a.flag} > /tmp/flag`]);
  assert.match(spec.devices.find((d) => d.name === 'r1')!.frrConfig!, new RegExp(`ospf router-id ${a.rid!.replace(/\./g, '\\.')}\\n`));
});
