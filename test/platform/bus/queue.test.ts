import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { connect, type NatsConnection } from 'nats';
import { openDatabase, type Database } from '../../../src/platform/db/database.js';
import { DatabaseQueue, JetStreamQueue, type DurableQueue } from '../../../src/platform/bus/queue.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../../helpers/postgres.js';
import { startThrowawayNats, type ThrowawayServer } from '../../helpers/servers.js';

async function pullUntil(q: DurableQueue, want: number, deadlineMs = 10_000) {
  const got = [];
  const deadline = Date.now() + deadlineMs;
  while (got.length < want && Date.now() < deadline) got.push(...(await q.pull(want - got.length, 1)));
  return got;
}

describe('durable queue', () => {
  let db: Database;
  let pgdb: ThrowawayDatabase;
  let nats: ThrowawayServer;
  let nc: NatsConnection;
  before(async () => {
    pgdb = await createThrowawayDatabase();
    db = await openDatabase({ url: pgdb.url, migrate: true });
    await db.db
      .insertInto('tenants')
      .values([
        { id: 'qa', disabled_at: null },
        { id: 'qb', disabled_at: null },
      ])
      .execute();
    nats = await startThrowawayNats();
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
    await db?.close();
    await pgdb?.drop();
  });

  const backends: Array<[string, () => Promise<DurableQueue>]> = [
    ['database', async () => new DatabaseQueue(db, `T${Math.random().toString(36).slice(2, 8).toUpperCase()}`)],
    ['jetstream', async () => JetStreamQueue.open(nc, `T${Math.random().toString(36).slice(2, 8).toUpperCase()}`)],
  ];

  for (const [name, make] of backends) {
    it(`${name}: delivers what was enqueued, in order, with tenant and subject; acked messages are gone`, async () => {
      const q = await make();
      await q.enqueue('qa', 'events', [{ n: 1 }, { n: 2 }, { n: 3 }]);
      await q.enqueue('qb', 'events', [{ n: 4 }]);
      assert.equal(await q.depth(), 4);
      const got = await pullUntil(q, 4);
      assert.deepEqual(
        got.map((d) => [d.tenantId, d.subject, (d.payload as { n: number }).n]),
        [
          ['qa', 'events', 1],
          ['qa', 'events', 2],
          ['qa', 'events', 3],
          ['qb', 'events', 4],
        ],
      );
      await q.ack(got);
      assert.equal(await q.depth(), 0);
    });

    it(`${name}: a message that is not acked comes back (crashed consumer), a nak'd one too`, async () => {
      const q = await make();
      await q.enqueue('qa', 'events', [{ n: 'lost' }]);
      const first = await pullUntil(q, 1);
      assert.equal(first.length, 1);
      await q.nak(first, 0);
      const again = await pullUntil(q, 1);
      assert.equal((again[0]!.payload as { n: string }).n, 'lost');
      assert.ok(again[0]!.attempts >= 1);
      await q.ack(again);
    });
  }

  for (const [name, make] of backends) {
    it(`${name}: operations within a transaction take effect with its commit: a rolled-back one leaves nothing, afterCommit completes a committed one`, async () => {
      const q = await make();
      await assert.rejects(
        db.withTenant('qa', async (tx) => {
          await q.within(tx).enqueue('qa', 'events', [{ n: 'rolled back' }]);
          throw new Error('rollback');
        }),
      );
      assert.equal(await q.depth(), 0, 'nothing of a rolled-back transaction is queued');
      const committed = await db.withTenant('qa', async (tx) => {
        const t = q.within(tx);
        await t.enqueue('qa', 'events', [{ n: 'kept' }]);
        return t;
      });
      await committed.afterCommit();
      const [d] = await pullUntil(q, 1);
      assert.equal((d!.payload as { n: string }).n, 'kept');
      const acked = await db.withTenant('qa', async (tx) => {
        const t = q.within(tx);
        await t.ack([d!]);
        return t;
      });
      await acked.afterCommit();
      assert.equal(await q.depth(), 0, 'acknowledged with the commit');
    });
  }

  it('database: enqueue inside a tenant transaction commits or vanishes with it, and RLS refuses another tenant', async () => {
    const q = new DatabaseQueue(db, 'TXQ');
    await assert.rejects(
      db.withTenant('qa', async (tx) => {
        await q.within(tx).enqueue('qa', 'events', [{ n: 1 }]);
        throw new Error('rollback');
      }),
    );
    assert.equal(await q.depth(), 0);
    await assert.rejects(
      db.withTenant('qa', (tx) => q.within(tx).enqueue('qb', 'events', [{ n: 1 }])),
      /row-level security/,
    );
    // The app role cannot read the queue directly: only through the claim function.
    const visible = await sql<{ n: number }>`SELECT count(*)::int AS n FROM queue_messages`.execute(db.db);
    assert.equal(visible.rows[0]!.n, 0);
  });

  it('database: an ack inside a transaction that rolls back leaves the message for redelivery', async () => {
    const q = new DatabaseQueue(db, 'ACKQ');
    await q.enqueue('qa', 'events', [{ n: 1 }]);
    const [d] = await q.pull(1, 1);
    await assert.rejects(
      db.withTenant('qa', async (tx) => {
        await q.within(tx).ack([d!]);
        throw new Error('decision failed');
      }),
    );
    assert.equal(await q.depth(), 1);
  });
});
