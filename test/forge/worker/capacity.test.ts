import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from 'nats';
import { WorkerFleet, type FleetEvents } from '../../../src/forge/orchestrator/fleet.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { toLabSpec } from '../../../src/forge/templates/to-spec.js';
import { WorkerAgent } from '../../../src/forge/worker/agent.js';
import { FleetAuth } from '../../../src/forge/worker/channel.js';
import { tinyTemplate } from '../orchestrator/helpers.js';
import { startThrowawayNats } from '../../helpers/servers.js';

test('two orchestrators on stale adverts: the full worker refuses the job and the lab goes to the next one', { timeout: 120_000 }, async () => {
  const nats = await startThrowawayNats();
  const run = randomBytes(3).toString('hex');
  const secret = randomBytes(32);
  const dirs = [await mkdtemp(path.join(tmpdir(), 'fg-cap-a-')), await mkdtemp(path.join(tmpdir(), 'fg-cap-b-'))];
  const runtimes = dirs.map((d) => new NetnsLabRuntime({ stateDir: path.join(d, 'labs') }));
  const nc = await connect({ servers: nats.url });
  const auth = () => new FleetAuth(secret);
  // Heartbeats far apart: between them the adverts do not show what either fleet placed.
  const agents = [
    new WorkerAgent({ nc, runtime: runtimes[0]!, workerId: `c${run}-a`, capacity: 1, heartbeatMs: 60_000, auth: auth() }),
    new WorkerAgent({ nc, runtime: runtimes[1]!, workerId: `c${run}-b`, capacity: 1, heartbeatMs: 60_000, auth: auth() }),
  ];
  const events: FleetEvents = { workerLost: async () => undefined, workerReturned: async () => undefined, error: (err) => assert.fail(String(err)) };
  const fleets = [new WorkerFleet({ auth: auth(), pollMs: 60_000 }), new WorkerFleet({ auth: auth(), pollMs: 60_000 })];
  const ids: string[] = [];
  try {
    for (const agent of agents) await agent.start();
    for (const fleet of fleets) await fleet.start(nc, events);
    for (const fleet of fleets)
      assert.deepEqual(
        fleet.liveWorkers().map((w) => [w.workerId, w.free]),
        [
          [agents[0]!.workerId, 1],
          [agents[1]!.workerId, 1],
        ],
      );
    const spec = () => {
      const id = `scn_${randomBytes(12).toString('hex')}`;
      ids.push(id);
      return toLabSpec(tinyTemplate(), id);
    };

    const first = await fleets[0]!.create(spec());
    assert.equal(await fleets[0]!.placementOf(first.scenarioId), agents[0]!.workerId);
    // The second fleet still believes a is free (its order puts a first): a refuses, b builds.
    assert.equal(fleets[1]!.liveWorkers()[0]!.workerId, agents[0]!.workerId);
    const second = await fleets[1]!.create(spec());
    assert.equal(await fleets[1]!.placementOf(second.scenarioId), agents[1]!.workerId);
    assert.deepEqual(
      (await runtimes[0]!.list()).map((l) => l.scenarioId),
      [first.scenarioId],
    );
    assert.deepEqual(
      (await runtimes[1]!.list()).map((l) => l.scenarioId),
      [second.scenarioId],
    );
    // Both full now, as both fleets have learnt from the answers.
    await assert.rejects(fleets[1]!.create(spec()), { status: 503 });
    assert.deepEqual((await runtimes[0]!.list()).length + (await runtimes[1]!.list()).length, 2, 'no worker ran over its capacity');

    await fleets[0]!.destroy(first.scenarioId);
    await fleets[1]!.destroy(second.scenarioId);
    assert.deepEqual([...(await runtimes[0]!.list()), ...(await runtimes[1]!.list())], []);
  } finally {
    for (const fleet of fleets) await fleet.stop();
    for (const agent of agents) await agent.stop();
    await nc.close();
    for (const r of runtimes) await r.reconcile(new Set());
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    await nats.stop();
    await nats.dispose();
  }
});
