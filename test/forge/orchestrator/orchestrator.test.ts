import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { newScenarioId, Orchestrator } from '../../../src/forge/orchestrator/service.js';
import { ScenarioStateError } from '../../../src/forge/orchestrator/states.js';
import { idPattern } from '../../../src/platform/ids.js';
import { LabNames, RUN_NETNS, legacyTag, scenarioHex } from '../../../src/forge/runtime/netns/naming.js';
import { runCommand } from '../../../src/forge/runtime/netns/process.js';
import { writeRecord } from '../../../src/forge/runtime/netns/state.js';
import { loadTemplate } from '../../../src/forge/templates/load.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { toLabSpec } from '../../../src/forge/templates/to-spec.js';
import { ROOT } from '../../helpers/cli.js';
import { makeRig, namespacesOf, tinyTemplate } from './helpers.js';

test('create -> running -> exec shows the template addresses -> extend -> destroy leaves nothing', async (t) => {
  const rig = await makeRig(t);
  const template = await loadTemplate(path.join(ROOT, 'templates/netplus-two-subnets.yaml'));
  const progress: string[] = [];
  const orch = new Orchestrator({
    store: rig.store,
    runtime: rig.runtime,
    catalog: new TemplateCatalog(),
    clock: () => rig.clock.now,
    onProgress: (_id, m) => progress.push(m),
  });

  const s = await orch.create(rig.tenantId, template, 'alice');
  assert.equal(s.state, 'running');
  assert.match(s.scenario_id, idPattern('scn'));
  assert.equal(s.template_version, template.version);
  assert.equal(s.expires_at, new Date(rig.clock.now.getTime() + 60 * 60_000).toISOString());
  assert.deepEqual(
    s.devices.find((d) => d.name === 'r1')?.addresses.map((a) => a.address),
    ['10.10.1.1/24', '10.10.2.1/24'],
  );
  assert.ok(progress.some((m) => /^creating namespaces/.test(m)));
  assert.ok(progress.includes('device h2 ready (10.10.2.20/24)'));
  assert.equal(namespacesOf(rig.runtime, s.scenario_id).length, 4, 'three devices and the switch');

  const addr = await orch.exec(rig.tenantId, s.scenario_id, 'h1', ['ip', '-br', 'addr'], { asLearner: true });
  assert.equal(addr.exitCode, 0, addr.stderr);
  assert.match(addr.stdout, /eth0@\S+\s+UP\s+10\.10\.1\.10\/24/);
  // The initial state is the learner's problem: no gateway, so the other subnet is unreachable...
  const before = await orch.exec(rig.tenantId, s.scenario_id, 'h1', ['ping', '-c', '1', '-W', '1', '10.10.2.20'], {});
  assert.notEqual(before.exitCode, 0);
  // ...and the router does forward once the hosts have one (applied as trusted setup here).
  for (const [dev, gw] of [
    ['h1', '10.10.1.1'],
    ['h2', '10.10.2.1'],
  ] as const) {
    const r = await orch.exec(rig.tenantId, s.scenario_id, dev, ['ip', 'route', 'add', 'default', 'via', gw], {});
    assert.equal(r.exitCode, 0, r.stderr);
  }
  const after = await orch.exec(rig.tenantId, s.scenario_id, 'h1', ['ping', '-c', '1', '-W', '2', '10.10.2.20'], {});
  assert.equal(after.exitCode, 0, after.stdout + after.stderr);

  rig.clock.now = new Date(rig.clock.now.getTime() + 10 * 60_000);
  const extended = await orch.extend(rig.tenantId, s.scenario_id, 30);
  assert.equal(extended.expires_at, new Date(Date.parse(s.expires_at) + 30 * 60_000).toISOString());
  await assert.rejects(orch.extend(rig.tenantId, s.scenario_id, 24 * 60), { status: 422 });

  const gone = await orch.destroy(rig.tenantId, s.scenario_id);
  assert.equal(gone.state, 'destroyed');
  assert.deepEqual(namespacesOf(rig.runtime, s.scenario_id), []);
  assert.deepEqual(await rig.runtime.list(), []);
  await assert.rejects(orch.destroy(rig.tenantId, s.scenario_id), ScenarioStateError);
  await assert.rejects(orch.extend(rig.tenantId, s.scenario_id, 5), ScenarioStateError);
  await assert.rejects(orch.exec(rig.tenantId, s.scenario_id, 'h1', ['true']), ScenarioStateError);
});

test('reset rebuilds the lab from the template: learner changes are gone', async (t) => {
  const rig = await makeRig(t);
  const s = await rig.orchestrator.create(rig.tenantId, tinyTemplate(), 'bob');
  await rig.orchestrator.exec(rig.tenantId, s.scenario_id, 'h1', ['/bin/sh', '-c', 'echo changed > /root/mark'], { asLearner: true });
  const reset = await rig.orchestrator.reset(rig.tenantId, s.scenario_id);
  assert.equal(reset.state, 'running');
  const mark = await rig.orchestrator.exec(rig.tenantId, s.scenario_id, 'h1', ['cat', '/root/mark'], { asLearner: true });
  assert.notEqual(mark.exitCode, 0, 'the file written before the reset is gone');
  const addr = await rig.orchestrator.exec(rig.tenantId, s.scenario_id, 'h2', ['ip', '-br', 'addr'], {});
  assert.match(addr.stdout, /10\.77\.0\.11\/24/);
  await rig.orchestrator.destroy(rig.tenantId, s.scenario_id);
  assert.deepEqual(namespacesOf(rig.runtime, s.scenario_id), []);
});

test('TTL expiry destroys the lab once the clock passes expires_at, not before', async (t) => {
  const rig = await makeRig(t);
  const s = await rig.orchestrator.create(rig.tenantId, tinyTemplate(), 'carol');
  rig.clock.now = new Date(Date.parse(s.expires_at) - 1000);
  assert.deepEqual(await rig.orchestrator.sweepExpired(), []);
  assert.equal((await rig.orchestrator.get(rig.tenantId, s.scenario_id)).state, 'running');
  assert.equal(namespacesOf(rig.runtime, s.scenario_id).length, 3);

  rig.clock.now = new Date(Date.parse(s.expires_at));
  assert.deepEqual(await rig.orchestrator.sweepExpired(), [s.scenario_id]);
  assert.equal((await rig.orchestrator.get(rig.tenantId, s.scenario_id)).state, 'expired');
  assert.deepEqual(namespacesOf(rig.runtime, s.scenario_id), []);
  assert.deepEqual(await rig.orchestrator.sweepExpired(), [], 'an expired scenario is not swept twice');
});

test('reconcile removes labs whose scenario is not running and keeps running ones', async (t) => {
  const rig = await makeRig(t);
  const kept = await rig.orchestrator.create(rig.tenantId, tinyTemplate(), 'dave');
  const failed = await rig.orchestrator.create(rig.tenantId, tinyTemplate(), 'dave');
  // A lab left behind although its row says failed, and one with no row at all.
  await rig.store.transition(rig.tenantId, failed.scenario_id, 'failed', { error: 'test' });
  const orphan = newScenarioId();
  await rig.runtime.create(toLabSpec(tinyTemplate(), orphan));
  // A row stuck in provisioning by a process that died (no one is building it here).
  const stuck = await rig.store.insert(rig.tenantId, {
    scenario_id: newScenarioId(),
    template_id: 'tiny-lab',
    template_version: 'v',
    track: 'netplus',
    subject: 'x',
    expires_at: new Date(rig.clock.now.getTime() + 60_000),
  });
  await rig.store.transition(rig.tenantId, stuck.scenario_id, 'provisioning');
  await rig.runtime.create(toLabSpec(tinyTemplate(), stuck.scenario_id));

  const { removed } = await rig.orchestrator.reconcile();
  assert.deepEqual([...removed].sort(), [failed.scenario_id, orphan, stuck.scenario_id].sort());
  for (const id of [failed.scenario_id, orphan, stuck.scenario_id]) assert.deepEqual(namespacesOf(rig.runtime, id), []);
  assert.equal(namespacesOf(rig.runtime, kept.scenario_id).length, 3);
  const stuckNow = await rig.store.get(rig.tenantId, stuck.scenario_id);
  assert.equal(stuckNow.state, 'failed');
  assert.match(stuckNow.error ?? '', /interrupted/);
  const still = await rig.orchestrator.exec(rig.tenantId, kept.scenario_id, 'h1', ['true'], { asLearner: true });
  assert.equal(still.exitCode, 0);
});

test('a running scenario whose lab reconcile removes (built under the 16-bit names) is marked failed, saying why', async (t) => {
  const rig = await makeRig(t);
  const row = await rig.store.insert(rig.tenantId, {
    scenario_id: newScenarioId(),
    template_id: 'tiny-lab',
    template_version: 'v',
    track: 'netplus',
    subject: 'erin',
    expires_at: new Date(rig.clock.now.getTime() + 60_000),
  });
  await rig.store.transition(rig.tenantId, row.scenario_id, 'provisioning');
  await rig.store.transition(rig.tenantId, row.scenario_id, 'running');
  // What such a lab leaves: a device namespace under the old tag, and its record in this state dir.
  const old = new LabNames(legacyTag(rig.runtime.tag), scenarioHex(row.scenario_id));
  t.after(() => runCommand(['ip', 'netns', 'del', old.deviceNs('h1')], { timeoutMs: 5000 }));
  const added = await runCommand(['ip', 'netns', 'add', old.deviceNs('h1')], { timeoutMs: 5000 });
  assert.equal(added.exitCode, 0, added.stderr);
  await writeRecord(rig.runtime.stateDir, {
    scenarioId: row.scenario_id,
    hex: old.hex,
    status: 'running',
    spec: { scenarioId: row.scenario_id, devices: [], networks: [] },
    createdAt: new Date().toISOString(),
  });

  const { removed } = await rig.orchestrator.reconcile();
  assert.deepEqual(removed, [row.scenario_id]);
  const now = await rig.store.get(rig.tenantId, row.scenario_id);
  assert.equal(now.state, 'failed');
  assert.match(now.error ?? '', /earlier FrostGate version.*spawn a new scenario/);
  assert.equal(existsSync(`${RUN_NETNS}/${old.deviceNs('h1')}`), false);
});
