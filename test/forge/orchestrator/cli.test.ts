import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { ROOT, runCli } from '../../helpers/cli.js';
import { namespacesOf } from './helpers.js';

test('frostgate lab up / exec / ls / down round trip on a temp FG_DATA_DIR, no server', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'fg-labcli-'));
  const runtime = new NetnsLabRuntime({ stateDir: path.join(dataDir, 'labs') });
  t.after(async () => {
    await runtime.reconcile(new Set());
    await rm(dataDir, { recursive: true, force: true });
  });
  const env = { FG_ENV: 'test', FG_DATA_DIR: dataDir, FG_BOOTSTRAP_TENANT: 'authors' };
  const file = path.join(ROOT, 'templates/netplus-two-subnets.yaml');

  const up = await runCli(['lab', 'up', file, '--json'], env);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, /creating namespaces/);
  assert.match(up.stderr, /device r1 ready \(10\.10\.1\.1\/24, 10\.10\.2\.1\/24\)/);
  const created = JSON.parse(up.stdout);
  const id: string = created.scenario_id;
  assert.match(id, /^scn_/);
  assert.equal(created.state, 'running');
  assert.deepEqual(created.limits, { cpu_shares: 512, memory_bytes: 512 * 1024 * 1024, pids: 512, disk_bytes_per_device: 64 * 1024 * 1024 });
  assert.deepEqual(
    created.devices.map((d: { name: string; addresses: Array<{ address: string }> }) => [d.name, d.addresses.map((a) => a.address)]),
    [
      ['r1', ['10.10.1.1/24', '10.10.2.1/24']],
      ['h1', ['10.10.1.10/24']],
      ['h2', ['10.10.2.20/24']],
    ],
  );
  assert.equal(namespacesOf(runtime, id).length, 4);

  const exec = await runCli(['lab', 'exec', id, 'h2', '--', 'ip', '-br', 'addr'], env);
  assert.equal(exec.code, 0, exec.stderr);
  assert.match(exec.stdout, /10\.10\.2\.20\/24/);
  // The command's exit status is the CLI's.
  const failing = await runCli(['lab', 'exec', id, 'h1', '--', 'sh', '-c', 'exit 7'], env);
  assert.equal(failing.code, 7);
  const noDevice = await runCli(['lab', 'exec', id, 'h9', '--', 'true'], env);
  assert.equal(noDevice.code, 1);
  assert.match(noDevice.stderr, /no device h9/);

  const ls = await runCli(['lab', 'ls', '--json'], env);
  assert.equal(ls.code, 0, ls.stderr);
  const listed = JSON.parse(ls.stdout).scenarios;
  assert.deepEqual(
    listed.map((s: { scenario_id: string; state: string }) => [s.scenario_id, s.state]),
    [[id, 'running']],
  );
  const lsText = await runCli(['lab', 'ls'], env);
  assert.match(lsText.stdout, new RegExp(`${id}\\s+running\\s+netplus-two-subnets@sha256-`));

  const down = await runCli(['lab', 'down', id], env);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`${id} destroyed`));
  assert.deepEqual(namespacesOf(runtime, id), []);
  // ls shows live labs only; --all also the destroyed one.
  assert.deepEqual(JSON.parse((await runCli(['lab', 'ls', '--json'], env)).stdout).scenarios, []);
  const lsAll = JSON.parse((await runCli(['lab', 'ls', '--all', '--json'], env)).stdout).scenarios;
  assert.deepEqual(
    lsAll.map((s: { scenario_id: string; state: string }) => [s.scenario_id, s.state]),
    [[id, 'destroyed']],
  );
  const again = await runCli(['lab', 'down', id], env);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /is destroyed; it cannot move to destroyed/);
  const unknown = await runCli(['lab', 'down', 'scn_doesnotexist'], env);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /not found/);
  const usage = await runCli(['lab', 'exec', id], env);
  assert.equal(usage.code, 2);
});
