import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { call, createTenants, findLostWrites, sensorEvent, startDependencies, type Dependencies } from './harness.js';

describe('chaos: two nodes racing on one tenant ledger', () => {
  it('the same event sent to two nodes at once is decided once, and every decision stays provable in the ledger', async () => {
    let deps: Dependencies | undefined;
    const apps: TestApp[] = [];
    try {
      deps = await startDependencies();
      for (let i = 0; i < 2; i++) apps.push(await startTestApp({ db: 'postgres', env: deps.env }));
      const urls = await Promise.all(apps.map((a) => a.app.listen({ host: '127.0.0.1', port: 0 })));
      const clients = await createTenants(urls[0]!, apps[0]!.adminKey, 1, 'tn');
      const key = clients[0]!.key;
      const accepted: Array<{ tenant: string; decisionId: string; ledgerIndex: number }> = [];
      for (let round = 0; round < 40; round++) {
        // A duplicate pair (one node loses the race after appending to the ledger, then rolls
        // back) and fresh events on both nodes, all at once.
        const dup = sensorEvent();
        const answers = await Promise.all([
          call(urls[0]!, 'POST', '/defend', key, dup),
          call(urls[1]!, 'POST', '/defend', key, dup),
          call(urls[0]!, 'POST', '/defend', key, sensorEvent()),
          call(urls[1]!, 'POST', '/defend', key, sensorEvent()),
        ]);
        for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
        assert.equal(answers[0].body.decision_id, answers[1].body.decision_id, 'one event, one decision');
        for (const a of answers)
          accepted.push({ tenant: clients[0]!.tenant, decisionId: String(a.body.decision_id), ledgerIndex: Number(a.body.ledger_index) });
      }
      assert.deepEqual(await findLostWrites(urls[1]!, clients, accepted), []);
    } finally {
      for (const a of apps.reverse()) await a.close();
      await deps?.dispose();
    }
  });
});
