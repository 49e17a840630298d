import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, type NatsConnection } from 'nats';
import { KEY_CACHE_TTL_MS, KEY_REVOKED_SUBJECT } from '../../src/core/auth/key-resolver.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import {
  acceptedOf,
  call,
  createTenants,
  failedDependencies,
  findLostWrites,
  isAccepted,
  settleBatches,
  startDependencies,
  statusCountsByPath,
  until,
  WriteTraffic,
  type Dependencies,
} from './harness.js';

describe('chaos: NATS down in the middle of traffic', () => {
  it('/defend keeps deciding, /ingest answers 503 (its queue is JetStream), and bus and queue work again without a restart', async () => {
    let deps: Dependencies | undefined;
    const apps: TestApp[] = [];
    let traffic: WriteTraffic | undefined;
    let watcher: NatsConnection | undefined;
    try {
      deps = await startDependencies();
      // Two nodes on one database and one NATS: revocations travel between them over the bus,
      // ingest batches through one JetStream work queue.
      const a = await startTestApp({ db: 'postgres', env: deps.env });
      apps.push(a);
      const b = await startTestApp({ db: 'postgres', env: deps.env });
      apps.push(b);
      const urlA = await a.app.listen({ host: '127.0.0.1', port: 0 });
      const urlB = await b.app.listen({ host: '127.0.0.1', port: 0 });
      const clients = await createTenants(urlA, a.adminKey, 3, 'nd');
      watcher = await connect({ servers: deps.nats.url, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const revocations: string[] = [];
      const sub = watcher.subscribe(KEY_REVOKED_SUBJECT);
      void (async () => {
        for await (const m of sub) revocations.push((JSON.parse(Buffer.from(m.data).toString('utf8')) as { id: string }).id);
      })();

      let flip = 0;
      const run = new WriteTraffic(() => (flip++ % 2 === 0 ? urlA : urlB), clients, { ingestEvery: 4, batchSize: 5 });
      traffic = run;
      run.start();
      await until(
        '50 accepted writes (some of them ingest batches) before the cut',
        () => run.count(isAccepted) >= 50 && run.count((o) => o.path === 'ingest' && isAccepted(o)) >= 5,
      );

      await deps.nats.stop();
      const cutAt = Date.now();
      // The bus carries notifications, not /defend's writes: it answers 200 throughout.
      await until(
        '50 decisions and 3 refused batches while NATS is down',
        () =>
          run.count((o) => o.startedAt > cutAt && o.path === 'defend' && o.status === 200) >= 50 &&
          run.count((o) => o.startedAt > cutAt && o.path === 'ingest' && o.status === 503) >= 3,
      );
      for (const url of [urlA, urlB]) {
        const ready = await call(url, 'GET', '/health/ready', undefined);
        assert.equal(ready.status, 503);
        assert.deepEqual(failedDependencies(ready), ['nats']);
      }
      assert.equal((await call(urlA, 'POST', '/defend', undefined, {})).status, 401);
      const restoreAt = Date.now();

      await deps.nats.start();
      await until(
        'both nodes see NATS again without a restart',
        async () =>
          failedDependencies(await call(urlA, 'GET', '/health/ready', undefined)).length === 0 &&
          failedDependencies(await call(urlB, 'GET', '/health/ready', undefined)).length === 0,
      );
      await until(
        'batches accepted again, and 50 writes after recovery',
        () =>
          run.count((o) => o.startedAt > restoreAt && o.path === 'ingest' && isAccepted(o)) >= 3 &&
          run.count((o) => o.startedAt > restoreAt && isAccepted(o)) >= 50,
      );
      const outcomes = await run.stop();
      const counts = statusCountsByPath(outcomes);
      assert.deepEqual(
        Object.keys(counts).filter((k) => !['defend 200', 'ingest 202', 'ingest 503'].includes(k)),
        [],
        `NATS is not on /defend's path: ${JSON.stringify(counts)}`,
      );
      const whileDown = outcomes.filter((o) => o.startedAt > cutAt && o.endedAt < restoreAt);
      assert.deepEqual(
        whileDown.filter((o) => o.path === 'ingest' && o.status !== 503).map((o) => o.status),
        [],
        'no batch is acknowledged while its queue is down',
      );

      // The bus is back for real: a key revoked on node A is refused by node B at once, before
      // B's cached lookup of it would have expired by itself (KEY_CACHE_TTL_MS).
      const victim = await call(urlA, 'POST', '/keys', a.adminKey, { scopes: ['decisions:read'], name: 'victim' });
      assert.equal(victim.status, 201);
      const victimKey = String(victim.body.key);
      assert.equal((await call(urlB, 'GET', '/decisions?limit=1', victimKey)).status, 200);
      const cachedAt = Date.now();
      assert.equal((await call(urlA, 'DELETE', `/keys/${String(victim.body.id)}`, a.adminKey)).status, 200);
      await until('node B refuses the revoked key', async () => (await call(urlB, 'GET', '/decisions?limit=1', victimKey)).status === 401, KEY_CACHE_TTL_MS);
      assert.ok(Date.now() - cachedAt < KEY_CACHE_TTL_MS, 'refused through the bus, not by cache expiry');
      await until('the revocation was seen on the bus by a third client', () => revocations.includes(String(victim.body.id)), 5_000);

      // And the queue: every batch acknowledged before, during or after the outage is decided.
      const batches = await settleBatches(urlA, clients, outcomes);
      assert.deepEqual(batches.lost, []);
      assert.deepEqual(await findLostWrites(urlA, clients, [...acceptedOf(outcomes), ...batches.decisions]), []);
    } finally {
      await traffic?.stop();
      await watcher?.close();
      for (const app of apps.reverse()) await app.close();
      await deps?.dispose();
    }
  });
});
