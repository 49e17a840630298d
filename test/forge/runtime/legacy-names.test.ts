import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { test } from 'node:test';
import { cgroupDirs, cgroupPids, createCgroup, destroyCgroup, inCgroupArgv } from '../../../src/forge/runtime/netns/cgroup.js';
import { LabNames, RUN_NETNS, legacyTag, scenarioHex } from '../../../src/forge/runtime/netns/naming.js';
import { runCommand } from '../../../src/forge/runtime/netns/process.js';
import { writeRecord } from '../../../src/forge/runtime/netns/state.js';
import { makeRuntime, uniqueId } from './helpers.js';

// Before instance tags grew to 32 bits a lab's kernel objects carried the first 16 bits of the
// same hash. Such a lab, left running across an upgrade, is unreachable under the new names: a
// restarted runtime must remove it rather than leak it, and only when its record is in its own
// state dir (another instance's objects may carry the same 16 bits).
test('reconcile removes labs named with the 16-bit tag of this state dir, and only those with a record here', async (t) => {
  const rt = makeRuntime(t);
  const ours = uniqueId('legacy');
  const foreign = uniqueId('foreign');
  const tag = legacyTag(rt.tag);
  const mine = new LabNames(tag, scenarioHex(ours));
  const other = new LabNames(tag, scenarioHex(foreign));
  t.after(async () => {
    for (const names of [mine, other]) {
      await runCommand(['ip', 'netns', 'del', names.deviceNs('h1')], { timeoutMs: 5000 });
      await destroyCgroup(names.cgroupName());
      await rm(names.frrDir('r1'), { recursive: true, force: true });
    }
  });

  // What an old lab leaves: a device namespace, a cgroup with a process in it, an FRR dir, a record.
  for (const names of [mine, other]) {
    const ns = await runCommand(['ip', 'netns', 'add', names.deviceNs('h1')], { timeoutMs: 5000 });
    assert.equal(ns.exitCode, 0, ns.stderr);
    await createCgroup(names.cgroupName(), { memoryBytes: 64 * 1024 * 1024, pids: 16, cpuShares: 256, diskBytes: 8 * 1024 * 1024 });
    await mkdir(names.frrDir('r1'), { recursive: true });
  }
  const [file, ...args] = inCgroupArgv(mine.cgroupName(), ['sleep', '600']);
  const sleeper = spawn(file!, args, { stdio: 'ignore' });
  t.after(() => sleeper.kill('SIGKILL'));
  const exited = new Promise((resolve) => sleeper.once('exit', resolve));
  for (let i = 0; i < 200 && (await cgroupPids(mine.cgroupName())).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await cgroupPids(mine.cgroupName())).length, 1, 'the old lab has a process');
  await writeRecord(rt.stateDir, {
    scenarioId: ours,
    hex: mine.hex,
    status: 'running',
    spec: { scenarioId: ours, devices: [], networks: [] },
    createdAt: new Date().toISOString(),
  });

  // Even a scenario the orchestrator keeps: nothing reaches that lab under the current names.
  const { removed } = await rt.reconcile(new Set([ours]));
  assert.deepEqual(removed, [ours]);
  await exited;
  assert.equal(existsSync(`${RUN_NETNS}/${mine.deviceNs('h1')}`), false, 'namespace removed');
  assert.ok(
    cgroupDirs(mine.cgroupName()).every((d) => !existsSync(d)),
    'cgroups removed',
  );
  assert.equal(existsSync(mine.frrDir('r1')), false, 'FRR dir removed');
  assert.equal(existsSync(`${rt.stateDir}/${mine.hex}`), false, 'record removed');
  assert.deepEqual(await rt.list(), []);

  // The same 16 bits without a record here: another instance's, left alone.
  assert.ok(existsSync(`${RUN_NETNS}/${other.deviceNs('h1')}`));
  assert.ok(cgroupDirs(other.cgroupName()).every((d) => existsSync(d)));
  assert.ok(existsSync(other.frrDir('r1')));
});
