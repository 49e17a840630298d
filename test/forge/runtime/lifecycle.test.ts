import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import type { LabSpec } from '../../../src/forge/runtime/types.js';
import { FRR_RUN_DIR, USERNS_DIR } from '../../../src/forge/runtime/netns/naming.js';
import { leftovers, makeRuntime, subnet, uniqueId } from './helpers.js';

function small(scenarioId: string): LabSpec {
  const lan = subnet();
  return {
    scenarioId,
    networks: [{ name: 'lan', cidr: lan(0) }],
    devices: [
      { name: 'h1', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(10)}/24` }], startup: ['echo started > /root/startup.txt'] },
      { name: 'h2', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(11)}/24` }] },
    ],
  };
}

test('list finds labs from kernel state; reconcile removes all but the kept ones', async (t) => {
  const rt = makeRuntime(t);
  const keep = uniqueId('keep');
  const drop = uniqueId('drop');
  await Promise.all([rt.create(small(keep)), rt.create(small(drop))]);
  const startup = await rt.exec(keep, 'h1', ['cat', '/root/startup.txt'], { asLearner: true });
  assert.equal(startup.stdout, 'started\n');
  await assert.rejects(rt.create(small(keep)), { code: 'lab_exists' });

  // A fresh instance on the same state dir (a restarted orchestrator) sees both.
  const restarted = new NetnsLabRuntime({ stateDir: rt.stateDir });
  const listed = await restarted.list();
  assert.deepEqual(listed.map((l) => l.scenarioId).sort(), [drop, keep].sort());
  assert.ok(listed.every((l) => l.status === 'running' && l.devices.join() === 'h1,h2'));

  const { removed } = await restarted.reconcile(new Set([keep]));
  assert.deepEqual(removed, [drop]);
  assert.deepEqual(leftovers(rt, drop), []);
  const still = await restarted.exec(keep, 'h2', ['true'], { asLearner: true });
  assert.equal(still.exitCode, 0);
  await restarted.reconcile(new Set());
  assert.deepEqual(leftovers(rt, keep), []);
  assert.deepEqual(await restarted.list(), []);
  await assert.rejects(rt.exec(keep, 'h1', ['true']), { code: 'lab_not_found' });
});

/** Stages of provisioning, recognised from kernel and process state alone. */
const STAGES: ReadonlyArray<readonly [string, (rt: NetnsLabRuntime, id: string) => boolean]> = [
  ['switch namespace created', (rt, id) => readdirSync('/run/netns').some((n) => n.startsWith(rt.namesFor(id).prefix))],
  ['user namespaces pinned', (rt, id) => existsSync(USERNS_DIR) && readdirSync(USERNS_DIR).some((n) => n.startsWith(rt.namesFor(id).prefix))],
  ['device inits running', (rt, id) => processWith(`${rt.stateDir}/${rt.namesFor(id).hex}/`, 'fg-init')],
  ['FRR daemons starting', (rt, id) => processWith(`${FRR_RUN_DIR}/${rt.namesFor(id).prefix}-`, 'zebra')],
];

function processWith(...parts: string[]): boolean {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (parts.every((p) => cmd.includes(p))) return true;
  }
  return false;
}

for (const [stage, reached] of STAGES) {
  test(`a provisioning process killed with SIGKILL (${stage}) leaks nothing after a fresh runtime's reconcile`, async (t) => {
    const rt = makeRuntime(t);
    const id = uniqueId('crash');
    const [a, b] = [subnet()(0).replace(/\.0\/24$/, ''), subnet()(0).replace(/\.0\/24$/, '')];
    const script = fileURLToPath(new URL('./fixtures/create-lab.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, rt.stateDir, id, a, b], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    let created = false;
    child.stdout.on('data', (d: Buffer) => (created ||= d.toString().includes('created')));
    // Provisioning takes a fraction of a second: poll tightly (synchronous reads, no sleeps).
    const deadline = Date.now() + 30_000;
    while (!reached(rt, id)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for: ${stage}`);
      await new Promise((r) => setImmediate(r));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(created, false, 'killed before create() finished');
    const before = leftovers(rt, id);
    assert.ok(before.length > 0, 'the crash left kernel objects behind to reconcile');

    const fresh = new NetnsLabRuntime({ stateDir: rt.stateDir });
    const listed = await fresh.list();
    assert.deepEqual(
      listed.map((l) => l.status),
      ['partial'],
    );
    const { removed } = await fresh.reconcile(new Set());
    assert.deepEqual(removed, [id]);
    assert.deepEqual(leftovers(rt, id), [], `left from: ${before.join('; ')}`);
    assert.deepEqual(await fresh.list(), []);
  });
}
