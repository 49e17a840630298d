import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../../src/config/config.js';
import { workerIdFrom } from '../../../src/forge/worker/module.js';
import { runCli } from '../../helpers/cli.js';
import { freePort } from '../../helpers/servers.js';

test('worker and placement settings: defaults, and refusals that name the fix', () => {
  const defaults = parseConfig({});
  assert.equal(defaults.config?.forge.placement, 'local', 'one process builds its own labs unless told otherwise');
  assert.deepEqual(defaults.config?.forge.worker, { id: undefined, capacity: 20, heartbeatMs: 2000 });
  assert.deepEqual(parseConfig({ FG_ORCHESTRATOR_PLACEMENT: 'workers' }).errors, [
    'FG_ORCHESTRATOR_PLACEMENT=workers needs FG_NATS_URL: labs are placed on worker agents through NATS JetStream',
  ]);
  assert.deepEqual(parseConfig({ FG_ORCHESTRATOR_PLACEMENT: 'workers', FG_NATS_URL: 'nats://127.0.0.1:4222' }).errors, []);
  assert.deepEqual(parseConfig({ FG_WORKER_ID: 'Worker_1' }).errors, ['FG_WORKER_ID must be 1-63 characters of a-z, 0-9 and -']);
  assert.match(parseConfig({ FG_WORKER_CAPACITY: '0' }).errors.join('\n'), /FG_WORKER_CAPACITY="0" is not an integer between 1 and 10000/);
  assert.equal(workerIdFrom('lab-host-7'), 'lab-host-7');
  assert.match(workerIdFrom(undefined), /^[a-z0-9][a-z0-9-]{0,62}$/);
});

test('serve --role worker without FG_NATS_URL refuses to start and says why', { timeout: 180_000 }, async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'fg-worker-nonats-'));
  try {
    const res = await runCli(['serve', '--role', 'worker'], { FG_ENV: 'test', FG_DATA_DIR: dataDir, FG_PORT: String(await freePort()), FG_LOG_LEVEL: 'error' });
    assert.notEqual(res.code, 0);
    assert.match(res.stdout + res.stderr, /the worker role needs FG_NATS_URL/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
