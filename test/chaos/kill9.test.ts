import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { verifyConsistency } from '../../src/ledger/proof-verify.js';
import { freePort } from '../helpers/servers.js';
import {
  acceptedOf,
  call,
  createTenants,
  failedDependencies,
  findLostWrites,
  isAccepted,
  settleBatches,
  spawnServer,
  startDependencies,
  statusCountsByPath,
  until,
  WriteTraffic,
  type Dependencies,
  type ServerProcess,
} from './harness.js';

describe('chaos: kill -9 of the server in the middle of traffic', () => {
  it(
    'after a restart on the same database every decision answered 200 and every ' + 'batch answered 202 before the kill is decided, stored and in the ledger',
    async () => {
      let deps: Dependencies | undefined;
      let server: ServerProcess | undefined;
      let traffic: WriteTraffic | undefined;
      try {
        deps = await startDependencies();
        const port = await freePort();
        server = await spawnServer(port, deps.env);
        const adminKey = server.adminKey;
        assert.ok(adminKey, 'the first start prints the bootstrap admin key');
        const baseUrl = server.baseUrl;
        const clients = await createTenants(baseUrl, adminKey, 3, 'k9');
        const run = new WriteTraffic(() => baseUrl, clients, { concurrency: 8, ingestEvery: 4, batchSize: 5 });
        traffic = run;
        run.start();
        await until(
          '60 accepted writes (some of them ingest batches) before the kill',
          () => run.count(isAccepted) >= 60 && run.count((o) => o.path === 'ingest' && isAccepted(o)) >= 5,
          30_000,
        );

        // Signed checkpoints taken before the kill: the log after the restart must extend them.
        const before = await Promise.all(clients.map(async (c) => (await call(baseUrl, 'GET', '/ledger/checkpoint?fresh=true', c.key)).body));
        await server.kill('SIGKILL');
        assert.equal(server.child.signalCode, 'SIGKILL');
        const killedAt = Date.now();
        await until('requests failing while the server is gone', () => run.count((o) => o.startedAt > killedAt && o.status === 0) >= 5);

        server = await spawnServer(port, deps.env);
        assert.equal(server.adminKey, undefined, 'same database: the bootstrap key is not issued again');
        const restartedAt = Date.now();
        await until('50 accepted writes after the restart', () => run.count((o) => o.startedAt > restartedAt && isAccepted(o)) >= 50, 30_000);
        const outcomes = await run.stop();

        const counts = statusCountsByPath(outcomes);
        // 0 = no answer (connection refused or reset by the kill): never counted as accepted.
        assert.deepEqual(
          Object.keys(counts).filter((k) => !['defend 200', 'defend 0', 'ingest 202', 'ingest 0'].includes(k)),
          [],
          JSON.stringify(counts),
        );
        assert.ok(outcomes.filter((o) => o.endedAt <= killedAt && isAccepted(o)).length >= 60);
        // A batch the killed process had in hand is redelivered once JetStream's ack wait (30 s) expires.
        const batches = await settleBatches(baseUrl, clients, outcomes, 90_000);
        assert.deepEqual(batches.lost, []);
        assert.deepEqual(await findLostWrites(baseUrl, clients, [...acceptedOf(outcomes), ...batches.decisions]), []);
        assert.deepEqual(failedDependencies(await call(baseUrl, 'GET', '/health/ready', undefined)), [], 'every dependency is healthy again');
        for (const [i, c] of clients.entries()) {
          const after = (await call(baseUrl, 'GET', '/ledger/checkpoint?fresh=true', c.key)).body;
          const from = Number(before[i]!.tree_size);
          const to = Number(after.tree_size);
          assert.ok(to > from, `${c.tenant}: the log grew after the restart`);
          const proof = (await call(baseUrl, 'GET', `/ledger/proof/consistency?from=${from}&to=${to}`, c.key)).body;
          verifyConsistency({
            firstSize: from,
            secondSize: to,
            firstRoot: Buffer.from(String(before[i]!.root_hash), 'base64'),
            secondRoot: Buffer.from(String(after.root_hash), 'base64'),
            proof: (proof.proof as string[]).map((p) => Buffer.from(p, 'base64')),
          });
        }
      } finally {
        await traffic?.stop();
        await server?.kill('SIGTERM');
        await deps?.dispose();
      }
    },
  );
});
