import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.js';
import {
  acceptedOf,
  call,
  createTenants,
  failedDependencies,
  findLostWrites,
  isAccepted,
  sensorEvent,
  settleBatches,
  startDependencies,
  statusCountsByPath,
  unknownKey,
  until,
  WriteTraffic,
  type Dependencies,
} from './harness.js';

describe('chaos: Redis down in the middle of traffic', () => {
  it('limited routes answer 503 while it is down, 401 stays 401, it recovers without a restart, and no accepted write is lost', async () => {
    let deps: Dependencies | undefined;
    let t: TestApp | undefined;
    let traffic: WriteTraffic | undefined;
    try {
      deps = await startDependencies();
      t = await startTestApp({ db: 'postgres', env: deps.env });
      const baseUrl = await t.app.listen({ host: '127.0.0.1', port: 0 });
      const clients = await createTenants(baseUrl, t.adminKey, 3, 'rd');
      const run = new WriteTraffic(() => baseUrl, clients, { ingestEvery: 4, batchSize: 5 });
      traffic = run;
      run.start();
      await until(
        '50 accepted writes (some of them ingest batches) before the cut',
        () => run.count(isAccepted) >= 50 && run.count((o) => o.path === 'ingest' && isAccepted(o)) >= 5,
      );

      await deps.redis.stop();
      const cutAt = Date.now();
      await until('30 refusals while Redis is down', () => run.count((o) => o.startedAt > cutAt && o.status === 503) >= 30);
      // Explicit probes while it is down: fail closed for valid keys, auth failures stay 401.
      const down = await call(baseUrl, 'POST', '/defend', clients[0]!.key, sensorEvent());
      assert.equal(down.status, 503);
      assert.equal(down.body.code, 'unavailable');
      assert.match(String(down.headers.get('content-type')), /problem\+json/);
      assert.ok(Number(down.headers.get('retry-after')) >= 1);
      assert.equal((await call(baseUrl, 'POST', '/ingest', clients[0]!.key, { events: [sensorEvent()] })).status, 503);
      assert.equal((await call(baseUrl, 'GET', '/decisions?limit=1', clients[0]!.key)).status, 503, 'reads are limited routes too');
      assert.equal((await call(baseUrl, 'POST', '/defend', undefined, {})).status, 401, 'no key');
      assert.equal((await call(baseUrl, 'POST', '/defend', unknownKey(), {})).status, 401, 'unknown key');
      assert.equal((await call(baseUrl, 'GET', '/health/live', undefined)).status, 200);
      const ready = await call(baseUrl, 'GET', '/health/ready', undefined);
      assert.equal(ready.status, 503);
      assert.deepEqual(failedDependencies(ready), ['redis']);
      const restoreAt = Date.now();

      await deps.redis.start();
      await until(
        'a decision and a batch accepted after Redis is back (same process, no restart)',
        () =>
          run.count((o) => o.startedAt > restoreAt && o.path === 'defend' && isAccepted(o)) > 0 &&
          run.count((o) => o.startedAt > restoreAt && o.path === 'ingest' && isAccepted(o)) > 0,
      );
      const backAt = Date.now();
      await until('50 accepted writes after recovery', () => run.count((o) => o.startedAt > backAt && isAccepted(o)) >= 50);
      const outcomes = await run.stop();
      assert.deepEqual(failedDependencies(await call(baseUrl, 'GET', '/health/ready', undefined)), [], 'every dependency is healthy again');

      const counts = statusCountsByPath(outcomes);
      assert.deepEqual(
        Object.keys(counts).filter((k) => !['defend 200', 'defend 503', 'ingest 202', 'ingest 503'].includes(k)),
        [],
        `valid writes get 200/202 or 503 only: ${JSON.stringify(counts)}`,
      );
      // Nothing that started once the cut was complete and ended before the restore got through.
      const whileDown = outcomes.filter((o) => o.startedAt > cutAt && o.endedAt < restoreAt);
      assert.ok(whileDown.length >= 30);
      assert.deepEqual(
        whileDown.filter((o) => o.status !== 503).map((o) => `${o.path} ${o.status}`),
        [],
      );
      assert.ok(whileDown.every((o) => o.code === 'unavailable'));

      const batches = await settleBatches(baseUrl, clients, outcomes);
      assert.deepEqual(batches.lost, []);
      const accepted = [...acceptedOf(outcomes), ...batches.decisions];
      assert.ok(accepted.length >= 100);
      assert.deepEqual(await findLostWrites(baseUrl, clients, accepted), []);
    } finally {
      await traffic?.stop();
      await t?.close();
      await deps?.dispose();
    }
  });
});
