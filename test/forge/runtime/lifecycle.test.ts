import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { NetnsLabRuntime, type LabSpec } from '../../../src/forge/runtime/index.js';
import { cgroupDirs } from '../../../src/forge/runtime/netns/cgroup.js';
import { leftovers, makeRuntime, subnet, uniqueId, waitFor } from './helpers.js';

function small(scenarioId: string, pids?: number): LabSpec {
  const lan = subnet();
  return {
    scenarioId,
    networks: [{ name: 'lan', cidr: lan(0) }],
    devices: [
      { name: 'h1', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(10)}/24` }], startup: ['echo started > /root/startup.txt'] },
      { name: 'h2', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(11)}/24` }] },
    ],
    ...(pids ? { limits: { pids, memoryBytes: 128 * 1024 * 1024 } } : {}),
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

test('a provisioning process killed with SIGKILL leaks nothing after reconcile', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('crash');
  const [a, b] = [subnet()(0).replace(/\.0\/24$/, ''), subnet()(0).replace(/\.0\/24$/, '')];
  const script = fileURLToPath(new URL('./fixtures/create-lab.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, rt.stateDir, id, a!, b!], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const prefix = rt.namesFor(id).prefix;
  // Kill as soon as the first namespaces exist: mid-provisioning.
  await waitFor('provisioning to start', 30_000, async () => (readdirSync('/run/netns').some((n) => n.startsWith(prefix)) ? true : undefined));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const { removed } = await new NetnsLabRuntime({ stateDir: rt.stateDir }).reconcile(new Set());
  assert.deepEqual(removed, [id]);
  assert.deepEqual(leftovers(rt, id), []);
});

test('a fork bomb is held by the pids limit and the host stays usable', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('bomb');
  await rt.create(small(id, 64));
  const pidsDir = cgroupDirs(rt.namesFor(id).cgroupName())[1]!;
  const { readFileSync } = await import('node:fs');
  const bomb = rt.exec(id, 'h1', ['/bin/bash', '-c', 'b(){ b | b & }; b'], { asLearner: true, timeoutMs: 2000 });
  const peak = await waitFor('the bomb to hit the limit', 10_000, async () => {
    const failcnt = Number(readFileSync(`${pidsDir}/pids.events`, 'utf8').match(/max (\d+)/)?.[1] ?? 0);
    return failcnt > 0 ? Number(readFileSync(`${pidsDir}/pids.current`, 'utf8')) : undefined;
  });
  assert.ok(peak <= 64, `pids.current ${peak} exceeds the limit`);
  // The host still forks and runs processes.
  const { execFileSync } = await import('node:child_process');
  assert.equal(execFileSync('/bin/echo', ['host ok'], { encoding: 'utf8' }), 'host ok\n');
  await bomb;
  await rt.destroy(id);
  assert.deepEqual(leftovers(rt, id), []);
});
