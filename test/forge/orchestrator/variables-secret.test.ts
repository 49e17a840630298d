import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig, startupProblems } from '../../../src/config/config.js';
import { Orchestrator } from '../../../src/forge/orchestrator/service.js';
import { variablesSecretFromConfig } from '../../../src/forge/orchestrator/variables-secret.js';
import { parseTemplate } from '../../../src/forge/templates/load.js';
import { scenarioVariables } from '../../../src/forge/templates/variables.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { makeRig } from './helpers.js';

const template = parseTemplate(`id: secret-vars
title: Secret variables
track: netplus
tier: basic
ttl_minutes: 30
variables:
  flag: { kind: token, length: 24, prefix: "FG{", suffix: "}" }
topology:
  networks: [{ name: lan, cidr: 10.79.0.0/24 }]
  devices:
    - name: h1
      kind: host
      interfaces: [{ network: lan, address: 10.79.0.10/24 }]
      files: [{ path: /root/flag.txt, content: "{{flag}}" }]
tasks: [read the flag]
successCriteria: [{ id: c1, description: d, points: 1, check: { type: answer, question: "flag?", variable: flag } }]
`);

test('the orchestrator derives lab variables with the deployment secret: the id alone does not give them', async (t) => {
  const rig = await makeRig(t);
  const secret = randomBytes(32);
  const orch = new Orchestrator({
    store: rig.store,
    runtime: rig.runtime,
    catalog: new TemplateCatalog(),
    clock: () => rig.clock.now,
    variablesSecret: secret,
  });
  const s = await orch.create(rig.tenantId, template, 'hana');
  const placed = await orch.exec(rig.tenantId, s.scenario_id, 'h1', ['cat', '/root/flag.txt'], { asLearner: true });
  assert.equal(placed.exitCode, 0, placed.stderr);
  const flag = placed.stdout.trim();
  assert.match(flag, /^FG\{[0-9a-f]{24}\}$/);
  // The grader computes the same value with the same secret...
  assert.equal(scenarioVariables(template.variables, s.scenario_id, secret).flag, flag);
  // ...but not from the scenario id alone, nor with another secret.
  assert.notEqual(scenarioVariables(template.variables, s.scenario_id).flag, flag);
  assert.notEqual(scenarioVariables(template.variables, s.scenario_id, randomBytes(32)).flag, flag);
  await orch.destroy(rig.tenantId, s.scenario_id);
});

test('FG_VARIABLES_SECRET: used as given; dev shares a random one through the data dir, test one per process; staging and prod require it', async (t) => {
  const dirA = await mkdtemp(join(tmpdir(), 'fg-vars-a-'));
  const dirB = await mkdtemp(join(tmpdir(), 'fg-vars-b-'));
  t.after(async () => {
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  });
  const configOf = (env: Record<string, string>) => {
    const report = parseConfig(env, dirA);
    assert.ok(report.config);
    return report.config;
  };
  const given = 'a'.repeat(10) + randomBytes(24).toString('base64');
  assert.equal(Buffer.from(variablesSecretFromConfig(configOf({ FG_ENV: 'test', FG_DATA_DIR: dirA, FG_VARIABLES_SECRET: given }))).toString(), given);

  // Two dev processes on one data dir (orchestrator and scoreboard roles) get the same secret...
  const first = variablesSecretFromConfig(configOf({ FG_ENV: 'dev', FG_DATA_DIR: dirA }));
  const second = variablesSecretFromConfig(configOf({ FG_ENV: 'dev', FG_DATA_DIR: dirA }));
  assert.deepEqual(Buffer.from(second), Buffer.from(first));
  assert.equal((await stat(join(dirA, 'variables.secret'))).mode & 0o777, 0o600);
  // ...another installation gets another one.
  assert.notDeepEqual(Buffer.from(variablesSecretFromConfig(configOf({ FG_ENV: 'dev', FG_DATA_DIR: dirB }))), Buffer.from(first));

  // test: the same random secret for every caller of this process, written nowhere.
  const testDir = join(dirB, 'never-created');
  const inTest = variablesSecretFromConfig(configOf({ FG_ENV: 'test', FG_DATA_DIR: testDir }));
  assert.deepEqual(Buffer.from(variablesSecretFromConfig(configOf({ FG_ENV: 'test', FG_DATA_DIR: testDir }))), Buffer.from(inTest));
  assert.notDeepEqual(Buffer.from(inTest), Buffer.from(first));
  await assert.rejects(stat(testDir), { code: 'ENOENT' });

  assert.throws(() => variablesSecretFromConfig(configOf({ FG_ENV: 'staging', FG_DATA_DIR: dirA })), /FG_VARIABLES_SECRET is required/);
  for (const env of ['staging', 'prod']) {
    const missing = startupProblems(parseConfig({ FG_ENV: env }, dirA));
    assert.ok(missing.includes('FG_VARIABLES_SECRET is missing'), missing.join('\n'));
    const placeholder = startupProblems(parseConfig({ FG_ENV: env, FG_VARIABLES_SECRET: 'changeme-changeme-changeme-changeme-0' }, dirA));
    assert.ok(
      placeholder.some((p) => p.startsWith('FG_VARIABLES_SECRET is a placeholder')),
      placeholder.join('\n'),
    );
    const good = startupProblems(parseConfig({ FG_ENV: env, FG_VARIABLES_SECRET: randomBytes(33).toString('base64') }, dirA));
    assert.ok(!good.some((p) => p.includes('FG_VARIABLES_SECRET')), good.join('\n'));
  }
  assert.ok(!startupProblems(parseConfig({ FG_ENV: 'dev' }, dirA)).some((p) => p.includes('FG_VARIABLES_SECRET')));
});
