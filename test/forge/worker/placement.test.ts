import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from 'nats';
import { KeyStore } from '../../../src/core/auth/store.js';
import { WorkerFleet } from '../../../src/forge/orchestrator/fleet.js';
import { FleetAuth } from '../../../src/forge/worker/channel.js';
import { Orchestrator } from '../../../src/forge/orchestrator/service.js';
import { ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { openDatabase } from '../../../src/platform/db/database.js';
import { AppError } from '../../../src/platform/http/problem.js';
import { tinyTemplate } from '../orchestrator/helpers.js';
import { CLI, cliEnv, ROOT } from '../../helpers/cli.js';
import { freePort, startThrowawayNats, trackChild } from '../../helpers/servers.js';

// Death is 8 heartbeats of silence: with 200 ms (1.6 s) a worker busy building a lab on a loaded
// machine was declared dead (fresh-clone run, 644/645).
const HEARTBEAT_MS = 1000;
/** The fleet secret the worker processes and this test's fleet share. */
const FLEET_SECRET = randomBytes(32).toString('base64');

/** Polls `probe` until it returns a value (not undefined/false) or the deadline passes. */
async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface WorkerProcess {
  readonly id: string;
  readonly dataDir: string;
  child: ChildProcess;
  output: string;
}

/** `frostgate serve --role worker` as one node process (SIGKILL reaches the agent itself). */
async function startWorker(w: Omit<WorkerProcess, 'child' | 'output'>, capacity: number, natsUrl: string): Promise<WorkerProcess> {
  const env = cliEnv({
    FG_ENV: 'test',
    FG_LOG_LEVEL: 'warn',
    FG_DATA_DIR: w.dataDir,
    FG_PORT: String(await freePort()),
    FG_NATS_URL: natsUrl,
    FG_WORKER_ID: w.id,
    FG_WORKER_CAPACITY: String(capacity),
    FG_WORKER_HEARTBEAT_MS: String(HEARTBEAT_MS),
    FG_FLEET_SECRET: FLEET_SECRET,
  });
  const child = trackChild(
    spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--role', 'worker'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const proc: WorkerProcess = { ...w, child, output: '' };
  child.stdout!.on('data', (d: Buffer) => (proc.output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (proc.output += d.toString()));
  return proc;
}

async function stopWorker(w: WorkerProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!w || w.child.exitCode !== null || w.child.signalCode !== null) return;
  const exited = new Promise((r) => w.child.once('exit', r));
  w.child.kill(signal);
  await exited;
}

/** The scenario ids whose lab state lives in a worker's data dir (read-only look at its runtime). */
async function labsOn(w: WorkerProcess): Promise<string[]> {
  const labs = await new NetnsLabRuntime({ stateDir: path.join(w.dataDir, 'labs') }).list();
  return labs.map((l) => l.scenarioId ?? l.prefix).sort();
}

test("labs are placed on worker processes by free capacity; a dead worker's labs fail and are removed when it returns", { timeout: 240_000 }, async () => {
  const nats = await startThrowawayNats();
  const db = await openDatabase({ embeddedDir: 'memory', migrate: true });
  const tenantId = `t-${randomBytes(4).toString('hex')}`;
  await new KeyStore(db).createTenant(tenantId);
  const run = randomBytes(3).toString('hex');
  const dirs = [await mkdtemp(path.join(tmpdir(), 'fg-wa-')), await mkdtemp(path.join(tmpdir(), 'fg-wb-'))];
  const fleet = new WorkerFleet({ auth: new FleetAuth(Buffer.from(FLEET_SECRET)), pollMs: 100, deadAfterMs: 8 * HEARTBEAT_MS, createTimeoutMs: 60_000 });
  const orch = new Orchestrator({ store: new ScenarioStore(db), runtime: fleet, catalog: new TemplateCatalog() });
  const nc = await connect({ servers: nats.url });
  const fleetErrors: unknown[] = [];
  const returned: string[] = [];
  let a: WorkerProcess | undefined;
  let b: WorkerProcess | undefined;
  try {
    await fleet.start(nc, {
      workerLost: async (workerId, ids) => void (await orch.failLost(ids, `worker ${workerId} stopped heartbeating; the lab was lost`)),
      workerReturned: async (workerId) => {
        returned.push(workerId);
        await orch.reconcile();
      },
      error: (err) => fleetErrors.push(err),
    });
    // Same prefix, so ties in free capacity go to -a (ids sort), whatever the random part.
    a = await startWorker({ id: `w${run}-a`, dataDir: dirs[0]! }, 2, nats.url);
    b = await startWorker({ id: `w${run}-b`, dataDir: dirs[1]! }, 1, nats.url);
    await until('both workers advertising', async () => fleet.liveWorkers().length === 2, 90_000).catch((err: Error) => {
      throw new Error(`${err.message}\nworker a:\n${a!.output}\nworker b:\n${b!.output}`);
    });
    assert.deepEqual(
      fleet.liveWorkers().map((w) => [w.workerId, w.free]),
      [
        [a.id, 2],
        [b.id, 1],
      ],
    );

    // 2 free vs 1: a. Then 1 vs 1: a (tie). Then 0 vs 1: b. Then nothing is free: 503.
    const template = tinyTemplate(`wk-${run}`);
    const s1 = await orch.create(tenantId, template, 'u1');
    const s2 = await orch.create(tenantId, template, 'u2');
    const s3 = await orch.create(tenantId, template, 'u3');
    for (const s of [s1, s2, s3]) assert.equal(s.state, 'running', s.error ?? '');
    assert.equal(await fleet.placementOf(s1.scenario_id), a.id);
    assert.equal(await fleet.placementOf(s2.scenario_id), a.id);
    assert.equal(await fleet.placementOf(s3.scenario_id), b.id);
    // Each worker's own runtime (its data dir) holds exactly the labs placed on it.
    assert.deepEqual(await labsOn(a), [s1.scenario_id, s2.scenario_id].sort());
    assert.deepEqual(await labsOn(b), [s3.scenario_id]);
    const full = await orch.create(tenantId, template, 'u4').catch((err: unknown) => err);
    assert.ok(full instanceof AppError && full.status === 503 && full.extensions.reason === 'no_worker_capacity', String(full));

    // Commands reach the lab on the worker that holds it.
    const addr = await orch.exec(tenantId, s3.scenario_id, 'h2', ['ip', '-br', 'addr'], { asLearner: true });
    assert.equal(addr.exitCode, 0, addr.stderr);
    assert.match(addr.stdout, /10\.77\.0\.11\/24/);
    const echoed = await orch.exec(tenantId, s1.scenario_id, 'h1', ['cat'], { stdin: 'through the bus' });
    assert.equal(echoed.stdout, 'through the bus');

    // Worker b dies: no heartbeat, so its scenario is failed; a's are untouched.
    await stopWorker(b, 'SIGKILL');
    const failed = await until('s3 marked failed', async () => {
      const s = await orch.get(tenantId, s3.scenario_id);
      return s.state === 'failed' ? s : undefined;
    });
    assert.match(failed.error ?? '', new RegExp(`worker ${b.id} stopped heartbeating`));
    assert.equal((await orch.get(tenantId, s1.scenario_id)).state, 'running');
    assert.equal((await orch.get(tenantId, s2.scenario_id)).state, 'running');
    assert.deepEqual(
      fleet.liveWorkers().map((w) => w.workerId),
      [a.id],
    );
    assert.deepEqual(await labsOn(b), [s3.scenario_id], "the dead worker's lab is still on its host");

    // It comes back (same id, same data dir): the orchestrator reconciles it and the lab goes.
    b = await startWorker({ id: b.id, dataDir: b.dataDir }, 1, nats.url);
    await until('b back and its failed lab removed', async () => fleet.liveWorkers().length === 2 && (await labsOn(b!)).length === 0, 90_000);
    // Its advert then shows the freed capacity (placement follows adverts, not the host).
    await until('b advertising free capacity', async () => fleet.liveWorkers().find((w) => w.workerId === b!.id)?.free === 1);
    assert.ok(returned.includes(b.id));
    assert.deepEqual(await labsOn(a), [s1.scenario_id, s2.scenario_id].sort(), "the live worker's labs are kept");
    // b has room again and gets the next lab.
    const s5 = await orch.create(tenantId, template, 'u5');
    assert.equal(await fleet.placementOf(s5.scenario_id), b.id);

    assert.deepEqual(fleetErrors, []);

    for (const s of [s1, s2, s5]) await orch.destroy(tenantId, s.scenario_id);
    assert.deepEqual(await labsOn(a), []);
    assert.deepEqual(await labsOn(b), []);
    assert.equal(await fleet.placementOf(s1.scenario_id), undefined, 'placements are forgotten with their labs');
  } finally {
    await stopWorker(a, 'SIGTERM');
    await stopWorker(b, 'SIGTERM');
    await fleet.stop();
    await nc.close();
    for (const dir of dirs) {
      await new NetnsLabRuntime({ stateDir: path.join(dir, 'labs') }).reconcile(new Set());
      await rm(dir, { recursive: true, force: true });
    }
    await db.close();
    await nats.stop();
    await nats.dispose();
  }
});
