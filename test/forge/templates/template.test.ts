import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { validateLabSpec, describeLimits } from '../../../src/forge/runtime/spec.js';
import { loadTemplate, parseTemplate } from '../../../src/forge/templates/load.js';
import { TemplateInvalidError, type TemplateProblem } from '../../../src/forge/templates/errors.js';
import { toLabSpec, templateLimits } from '../../../src/forge/templates/to-spec.js';
import { ROOT, runCli } from '../../helpers/cli.js';

const SHIPPED = path.join(ROOT, 'templates/netplus-two-subnets.yaml');

const MINIMAL = `id: test-lab
title: Test lab
track: ccna
tier: pro
ttl_minutes: 30
topology:
  networks:
    - { name: lan, cidr: 10.1.0.0/24 }
    - { name: wan, cidr: 10.2.0.0/24 }
  devices:
    - name: r1
      kind: router
      interfaces: [{ network: lan, address: 10.1.0.1/24 }, { network: wan, address: 10.2.0.1/24 }]
      frr_config: "hostname r1\\n"
    - name: h1
      kind: host
      interfaces: [{ network: lan, address: 10.1.0.10/24 }]
      routes: [{ to: default, via: 10.1.0.1 }]
      files: [{ path: /etc/motd, content: hello, mode: "0600" }]
tasks: [Do the thing]
successCriteria:
  - { id: c1, description: thing done, points: 10, check: { type: command, device: h1, run: "true" } }
`;

function problemsOf(text: string): TemplateProblem[] {
  try {
    parseTemplate(text, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof TemplateInvalidError, String(err));
    assert.equal(err.code, 'template_invalid');
    return [...err.problems];
  }
  assert.fail('the template was accepted');
}

function hasProblem(problems: readonly TemplateProblem[], pathText: string, message: RegExp): void {
  assert.ok(
    problems.some((p) => p.path === pathText && message.test(p.message)),
    `expected ${pathText}: ${message} in\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`,
  );
}

test('the shipped netplus template loads, converts to a valid LabSpec and has a content version', async () => {
  const t = await loadTemplate(SHIPPED);
  assert.equal(t.id, 'netplus-two-subnets');
  assert.equal(t.track, 'netplus');
  assert.equal(t.versionSource, 'content');
  assert.match(t.version, /^sha256-[0-9a-f]{16}$/);
  const spec = toLabSpec(t, 'scn_shipped_check');
  validateLabSpec(spec);
  assert.deepEqual(
    spec.devices.map((d) => d.name),
    ['r1', 'h1', 'h2'],
  );
  // The learner's task: hosts start without a default gateway.
  assert.ok(spec.devices.filter((d) => d.kind === 'host').every((d) => (d.routes ?? []).length === 0));
});

test('the content version ignores formatting and comments, follows content, and a stated version wins', async () => {
  const base = parseTemplate(MINIMAL);
  assert.equal(parseTemplate(`# a comment\n${MINIMAL}\n\n`).version, base.version);
  assert.notEqual(parseTemplate(MINIMAL.replace('ttl_minutes: 30', 'ttl_minutes: 31')).version, base.version);
  const stated = parseTemplate(`version: "2.1"\n${MINIMAL}`);
  assert.equal(stated.version, '2.1');
  assert.equal(stated.versionSource, 'stated');
});

test('toLabSpec maps modes, FRR config, routes and limits', () => {
  const t = parseTemplate(
    `${MINIMAL.replace('  devices:', '  limits: { memory_mb: 64, pids: 128, disk_mb: 16 }\n  devices:')}egress:\n ` +
      ` profile: to-r1\n  allow: [{ device: r1, proto: tcp, port: 22, from: [h1] }]\n`,
  );
  const spec = toLabSpec(t, 'scn_map_check');
  const h1 = spec.devices.find((d) => d.name === 'h1')!;
  assert.equal(h1.files?.[0]?.mode, 0o600);
  assert.deepEqual(h1.routes, [{ to: 'default', via: '10.1.0.1' }]);
  assert.equal(spec.devices.find((d) => d.name === 'r1')?.frrConfig, 'hostname r1\n');
  assert.deepEqual(spec.limits, { memoryBytes: 64 * 1024 * 1024, pids: 128, diskBytes: 16 * 1024 * 1024 });
  // What the lab page and `lab up` show: the template's limits, the runtime's defaults for the rest.
  assert.equal(describeLimits(templateLimits(t)), "CPU weight 512 (1024 = one core's share), memory 64 MiB, 128 processes, disk 16 MiB per device");
  assert.deepEqual(spec.egress, { name: 'to-r1', allow: [{ device: 'r1', proto: 'tcp', port: 22, from: ['h1'] }] });
  validateLabSpec(spec);
});

test('schema errors name each path, field and allowed values', () => {
  const text = MINIMAL.replace('track: ccna', 'track: ccnp').replace('kind: host', 'kind: host\n      colour: blue').replace('points: 10', 'points: ten');
  const problems = problemsOf(text.replace('tasks: [Do the thing]\n', ''));
  hasProblem(problems, 'track', /must be one of netplus, ccna, cissp/);
  hasProblem(problems, 'topology.devices[1].colour', /not a known field/);
  hasProblem(problems, 'successCriteria[0].points', /integer/);
  hasProblem(problems, 'tasks', /required/);
  // Lines point into the file.
  assert.equal(problems.find((p) => p.path === 'track')?.line, 3);
});

test('semantic errors name the exact path: CIDRs, references, routes, duplicates, files', () => {
  const problems = problemsOf(
    MINIMAL.replace('address: 10.1.0.10/24', 'address: 10.1.0.300/24')
      .replace('{ network: wan, address: 10.2.0.1/24 }', '{ network: dmz, address: 10.2.0.1/24 }')
      .replace('cidr: 10.2.0.0/24', 'cidr: 10.2.0.5/24')
      .replace('via: 10.1.0.1', 'via: 10.9.9.9')
      .replace('path: /etc/motd', 'path: /usr/bin/motd')
      .replace('check: { type: command, device: h1', 'check: { type: command, device: h9'),
  );
  hasProblem(problems, 'topology.devices[1].interfaces[0].address', /not a CIDR/);
  hasProblem(problems, 'topology.devices[0].interfaces[1].network', /unknown network dmz/);
  hasProblem(problems, 'topology.networks[1].cidr', /host bits set; the network address is 10\.2\.0\.0\/24/);
  hasProblem(problems, 'topology.devices[1].routes[0].via', /not on one of the device's networks/);
  hasProblem(problems, 'topology.devices[1].files[0].path', /under \/etc/);
  hasProblem(problems, 'successCriteria[0].check.device', /unknown device h9/);

  const dup = problemsOf(
    MINIMAL.replace('address: 10.1.0.10/24', 'address: 10.1.0.1/24')
      .replace('- name: h1', '- name: r1')
      .replace('frr_config: "hostname r1\\n"', 'frr_config: x'),
  );
  hasProblem(dup, 'topology.devices[1].name', /declared twice/);
  hasProblem(dup, 'topology.devices[1].interfaces[0].address', /already used by r1/);
  const hostFrr = problemsOf(MINIMAL.replace('routes: [{ to: default, via: 10.1.0.1 }]', 'routes: []\n      frr_config: x'));
  hasProblem(hostFrr, 'topology.devices[1].frr_config', /only routers/);
});

test('YAML syntax errors carry their line; an unreadable file is a template error', async () => {
  const problems = problemsOf('id: x\ntitle: [unclosed\n');
  assert.equal(problems[0]?.path, '(root)');
  assert.match(problems[0].message, /^YAML: /);
  assert.equal(typeof problems[0]?.line, 'number');
  await assert.rejects(loadTemplate('/nonexistent/lab.yaml'), (err: unknown) => err instanceof TemplateInvalidError && /ENOENT/.test(err.problems[0]!.message));
});

test('frostgate template validate: OK with a summary, or every error with its path and exit 1', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'fg-tpl-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ok = await runCli(['template', 'validate', SHIPPED]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^OK .*netplus-two-subnets@sha256-[0-9a-f]{16} \(netplus\/basic, ttl 60 min\)/);
  assert.match(ok.stdout, /h1 \(host\) 10\.10\.1\.10\/24/);
  const okJson = JSON.parse((await runCli(['template', 'validate', SHIPPED, '--json'])).stdout);
  assert.equal(okJson.ok, true);
  assert.equal(okJson.template.points, 100);

  const bad = path.join(dir, 'bad.yaml');
  const shipped = await readFile(SHIPPED, 'utf8');
  await writeFile(bad, shipped.replace('address: 10.10.1.10/24', 'address: 10.10.1.10').replace('tier: basic', 'tier: gold'));
  const res = await runCli(['template', 'validate', bad]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /INVALID .*bad\.yaml/);
  assert.match(res.stderr, /tier: must be one of basic, pro, enterprise \(got "gold"\) \(line \d+\)/);
  // Schema errors come first; fixing them reveals the semantic ones.
  await writeFile(bad, shipped.replace('address: 10.10.1.10/24', 'address: 10.10.1.10'));
  const res2 = await runCli(['template', 'validate', bad, '--json']);
  assert.equal(res2.code, 1);
  const body = JSON.parse(res2.stdout);
  assert.equal(body.ok, false);
  assert.deepEqual(
    body.errors.map((e: TemplateProblem) => [e.path, e.message]),
    [['topology.devices[1].interfaces[0].address', 'not a CIDR (a.b.c.d/n)']],
  );

  const usage = await runCli(['template', 'check', SHIPPED]);
  assert.equal(usage.code, 2);
});
