import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { LabSpec, ResourceLimits } from '../../../src/forge/runtime/types.js';
import { cgroupDirs, cgroupPids } from '../../../src/forge/runtime/netns/cgroup.js';
import { leftovers, makeRuntime, subnet, uniqueId, waitFor } from './helpers.js';

function twoHosts(scenarioId: string, limits?: Partial<ResourceLimits>): LabSpec {
  const lan = subnet();
  return {
    scenarioId,
    networks: [{ name: 'lan', cidr: lan(0) }],
    devices: [
      { name: 'h1', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(10)}/24` }] },
      { name: 'h2', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(11)}/24` }] },
    ],
    ...(limits ? { limits } : {}),
  };
}

const read = (path: string): string => readFileSync(path, 'utf8');

test('a fork bomb is held by the pids limit; the host and other labs stay usable; destroy removes it', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('bomb');
  const neighbour = uniqueId('calm');
  await Promise.all([rt.create(twoHosts(id, { pids: 64, memoryBytes: 128 * 1024 * 1024 })), rt.create(twoHosts(neighbour))]);
  const [, pidsDir] = cgroupDirs(rt.namesFor(id).cgroupName());
  const bomb = rt.exec(id, 'h1', ['/bin/bash', '-c', 'b(){ b | b & }; b; sleep 30'], { asLearner: true, timeoutMs: 20_000 });
  const peak = await waitFor('the bomb to hit the limit', 10_000, async () => {
    const failcnt = Number(/max (\d+)/.exec(read(`${pidsDir}/pids.events`))?.[1] ?? 0);
    return failcnt > 0 ? Number(read(`${pidsDir}/pids.current`)) : undefined;
  });
  assert.ok(peak <= 64, `pids.current ${peak} exceeds the limit`);

  // While it is still running: the host forks and runs processes, another lab answers.
  assert.ok(Number(read(`${pidsDir}/pids.current`)) > 32, 'the bomb is still running');
  for (let i = 0; i < 20; i++) assert.equal(execFileSync('/bin/echo', [`host ${i}`], { encoding: 'utf8' }), `host ${i}\n`);
  const other = await rt.exec(neighbour, 'h2', ['/bin/sh', '-c', 'echo $(( 6 * 7 ))'], { asLearner: true });
  assert.equal(other.stdout, '42\n');
  // A second shell in the bombed lab is refused at fork, not the host's.
  assert.ok(Number(read(`${pidsDir}/pids.current`)) <= 64);

  await rt.destroy(id);
  await bomb;
  assert.deepEqual(leftovers(rt, id), []);
  const still = await rt.exec(neighbour, 'h1', ['true'], { asLearner: true });
  assert.equal(still.exitCode, 0);
});

test('memory is capped per scenario (the hog is killed, the lab lives on) and cpu shares are set', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('memhog');
  const limits = { memoryBytes: 48 * 1024 * 1024, cpuShares: 128 };
  await rt.create(twoHosts(id, limits));
  const [memDir, , cpuDir] = cgroupDirs(rt.namesFor(id).cgroupName());
  assert.equal(Number(read(`${memDir}/memory.limit_in_bytes`)), limits.memoryBytes);
  assert.equal(Number(read(`${cpuDir}/cpu.shares`)), limits.cpuShares);

  // `tail -n 1` of an endless line keeps all of it in memory.
  const hog = await rt.exec(id, 'h1', ['/bin/bash', '-o', 'pipefail', '-c', 'head -c 512M /dev/zero | tail -n 1 | wc -c'], {
    asLearner: true,
    timeoutMs: 30_000,
  });
  assert.notEqual(hog.exitCode, 0);
  assert.ok(Number(read(`${memDir}/memory.failcnt`)) > 0, 'the limit was hit');
  assert.ok(Number(read(`${memDir}/memory.max_usage_in_bytes`)) <= limits.memoryBytes);
  assert.match(read(`${memDir}/memory.oom_control`), /oom_kill [1-9]/);

  // The devices survived the OOM kill of the hog, and every learner process is in all limits.
  const after = await rt.exec(id, 'h2', ['/bin/sh', '-c', 'sleep 30 & echo $!'], { asLearner: true });
  assert.equal(after.exitCode, 0);
  const pids = await cgroupPids(rt.namesFor(id).cgroupName());
  const sleeper = pids.find((p) => read(`/proc/${p}/cmdline`) === 'sleep\u000030\u0000');
  assert.ok(sleeper !== undefined);
  for (const dir of cgroupDirs(rt.namesFor(id).cgroupName())) {
    assert.ok(read(`${dir}/cgroup.procs`).split('\n').includes(String(sleeper)), `learner process in ${dir}`);
  }
  await rt.destroy(id);
  assert.deepEqual(leftovers(rt, id), []);
});
