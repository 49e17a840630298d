import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { startThrowawayNats } from '../../helpers/servers.js';

const BASE_MS = Math.floor(Date.now() / 60_000) * 60_000 - 600_000;
const at = (s: number) => new Date(BASE_MS + s * 1000).toISOString();
const sshFailure = (ip: string, s: number, extra: object = {}) => ({
  source: 'sshd',
  event_type: 'auth.failure',
  occurred_at: at(s),
  payload: { service: 'ssh', src_ip: ip, username: `user${s}` },
  ...extra,
});

/** Polls the batch until it is completed or failed; a deadline, not a sleep, bounds the wait. */
async function waitForBatch(
  t: TestApp,
  key: string,
  batchId: string,
  timeoutMs = 30_000,
): Promise<{ status: string; decided: number; decision_ids: string[]; event_count: number; error: string | null }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.app.inject({ url: `/ingest/batches/${batchId}`, headers: { 'x-api-key': key } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    if (body.status === 'completed' || body.status === 'failed') return body;
    if (Date.now() > deadline) throw new Error(`batch ${batchId} still ${body.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

for (const db of ['embedded', 'postgres'] as const) {
  describe(`/ingest (${db})`, () => {
    let t: TestApp;
    let key: string;
    before(async () => {
      t = await startTestApp({ db });
      key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['ingest:write', 'defend:write', 'decisions:read'] })).key;
    });
    after(async () => t?.close());
    const ingest = (payload: unknown, k = key) => t.app.inject({ method: 'POST', url: '/ingest', headers: { 'x-api-key': k }, payload: payload as object });
    const countRows = async (table: 'ingest_batches' | 'decisions') =>
      Number((await sql<{ n: string }>`SELECT count(*) AS n FROM ${sql.table(table)}`.execute(t.platform.db.db)).rows[0]!.n);

    it('answers 202 with a batch id once durable, then decides every event in order through evaluate(), into the ledger', async () => {
      const events = [0, 1, 2, 3, 4].map((s) => sshFailure('100.64.20.1', s));
      const res = await ingest({ events });
      assert.equal(res.statusCode, 202, res.body);
      const accepted = res.json();
      assert.match(accepted.batch_id, /^ing_[a-z0-9]{24}$/);
      assert.equal(accepted.event_count, 5);
      assert.equal(res.headers.location, `/ingest/batches/${accepted.batch_id}`);
      const done = await waitForBatch(t, key, accepted.batch_id);
      assert.equal(done.status, 'completed');
      assert.equal(done.decided, 5);
      const decisions = await Promise.all(
        done.decision_ids.map(async (id) => (await t.app.inject({ url: `/decisions/${id}`, headers: { 'x-api-key': key } })).json()),
      );
      assert.deepEqual(
        decisions.map((d) => d.threat_level),
        ['none', 'none', 'none', 'none', 'high'],
        'the fifth failure in 60 s is the brute force, as on /defend',
      );
      assert.ok(decisions.every((d) => d.path === 'ingest'));
      assert.deepEqual(
        decisions.map((d) => d.event_id),
        [0, 1, 2, 3, 4].map((i) => `${accepted.batch_id}:${i}`),
        'events without event_id get <batch>:<index>',
      );
      const indexes = decisions.map((d) => d.ledger_index);
      assert.deepEqual(
        indexes,
        [...indexes].sort((a, b) => a - b),
        'ledger order is event order',
      );
      const entries = (await t.app.inject({ url: `/ledger/entries?start=${indexes[0]}&end=${indexes[4] + 1}`, headers: { 'x-api-key': key } })).json().entries;
      assert.deepEqual(
        entries.map((e: { record: { decision_id: string } }) => e.record.decision_id),
        done.decision_ids,
      );
      assert.ok(decisions[4].decision_diff, 'a high decision carries its diff');
    });

    it('decides a duplicate event_id once, inside a batch, across batches and across /defend', async () => {
      const id = `dup-${db}-${Date.now()}`;
      const e = sshFailure('100.64.20.2', 10, { event_id: id });
      const first = await waitForBatch(t, key, (await ingest({ events: [e, e, sshFailure('100.64.20.2', 11)] })).json().batch_id);
      assert.equal(first.decision_ids[0], first.decision_ids[1]);
      assert.notEqual(first.decision_ids[0], first.decision_ids[2]);
      const second = await waitForBatch(t, key, (await ingest({ events: [e] })).json().batch_id);
      assert.equal(second.decision_ids[0], first.decision_ids[0]);
      const viaDefend = (await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': key }, payload: e })).json();
      assert.equal(viaDefend.decision_id, first.decision_ids[0]);
      const rows = await t.platform.db.withTenant(t.tenantId, (tx) => tx.selectFrom('decisions').select('decision_id').where('event_id', '=', id).execute());
      assert.equal(rows.length, 1);
    });

    it('a redelivered batch decides nothing twice (idempotency keys survive a crash before the ack)', async () => {
      const inputs = [0, 1, 2].map((i) => ({ event: sshFailure('100.64.20.3', 20 + i) as never, idempotencyKey: `ing_redelivery${db}:${i}` }));
      const once = await t.decisions.service.decideMany(t.tenantId, inputs, 'ingest');
      const twice = await t.decisions.service.decideMany(t.tenantId, inputs, 'ingest');
      assert.deepEqual(
        twice.map((d) => d.decision_id),
        once.map((d) => d.decision_id),
      );
      const n = await t.platform.db.withTenant(t.tenantId, (tx) =>
        tx
          .selectFrom('decisions')
          .select((e) => e.fn.countAll<string>().as('n'))
          .where('event_id', 'like', `ing_redelivery${db}:%`)
          .executeTakeFirstOrThrow(),
      );
      assert.equal(Number(n.n), 3);
    });

    it('refuses bad batches whole, naming the field, and stores nothing of them', async () => {
      const batchesBefore = await countRows('ingest_batches');
      const decisionsBefore = await countRows('decisions');
      const good = sshFailure('100.64.20.4', 30);

      const tooMany = await ingest({ events: Array.from({ length: 1001 }, (_, i) => sshFailure('100.64.20.4', i % 60)) });
      assert.equal(tooMany.statusCode, 413, tooMany.body);
      assert.match(tooMany.json().detail, /at most 1000 events; this one has 1001/);

      const badIp = await ingest({ events: [good, good, good, { ...good, payload: { ...good.payload, src_ip: '100.64.20.300' } }] });
      assert.equal(badIp.statusCode, 422, badIp.body);
      assert.match(badIp.json().detail, /^body\/events\/3\/payload\.src_ip|^body\/events\/3\/payload\/src_ip/);
      assert.match(badIp.json().detail, /nothing of this batch was stored/);

      const future = await ingest({ events: [{ ...good, occurred_at: new Date(Date.now() + 3_600_000).toISOString() }] });
      assert.equal(future.statusCode, 422);
      assert.match(future.json().detail, /body\/events\/0\/occurred_at: is more than 300 s in the future/);

      const wrongType = await ingest({ events: [{ ...good, event_type: 42 }] });
      assert.equal(wrongType.statusCode, 400);
      assert.match(wrongType.json().detail, /events\/0\/event_type/);

      const malformed = await t.app.inject({
        method: 'POST',
        url: '/ingest',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        payload: '{"events": [',
      });
      assert.equal(malformed.statusCode, 400);
      assert.equal(malformed.json().code, 'malformed_json');

      const empty = await ingest({ events: [] });
      assert.equal(empty.statusCode, 400);

      const notABatch = await ingest([good]);
      assert.equal(notABatch.statusCode, 400);

      assert.equal(await countRows('ingest_batches'), batchesBefore, 'no batch row from a refused batch');
      assert.equal(await countRows('decisions'), decisionsBefore, 'no decision from a refused batch');
    });

    it('needs ingest:write, and a batch id of another tenant is not found', async () => {
      const readOnly = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'] })).key;
      assert.equal((await ingest({ events: [sshFailure('100.64.20.5', 1)] }, readOnly)).statusCode, 403);
      const other = `ingest-other-${db}`;
      await t.auth.store.createTenant(other);
      const otherKey = (await t.auth.store.createKey({ tenantId: other, scopes: ['ingest:write'] })).key;
      const mine = (await ingest({ events: [sshFailure('100.64.20.5', 2)] })).json().batch_id;
      const res = await t.app.inject({ url: `/ingest/batches/${mine}`, headers: { 'x-api-key': otherKey } });
      assert.equal(res.statusCode, 404);
    });
  });
}

describe('/ingest on JetStream (FG_NATS_URL set)', () => {
  let t: TestApp;
  let nats: Awaited<ReturnType<typeof startThrowawayNats>>;
  before(async () => {
    nats = await startThrowawayNats();
    t = await startTestApp({ db: 'embedded', env: { FG_NATS_URL: nats.url } });
  });
  after(async () => {
    await t?.close();
    await nats?.stop();
    await nats?.dispose();
  });

  it('answers 202 after the JetStream ack, decides from the stream, and 503s (storing nothing) while NATS is down', async () => {
    const key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['ingest:write', 'decisions:read'] })).key;
    const post = (events: object[]) => t.app.inject({ method: 'POST', url: '/ingest', headers: { 'x-api-key': key }, payload: { events } });
    const accepted = await post([0, 1, 2, 3, 4].map((s) => sshFailure('100.64.21.1', s)));
    assert.equal(accepted.statusCode, 202, accepted.body);
    const done = await waitForBatch(t, key, accepted.json().batch_id);
    assert.equal(done.decided, 5);

    await nats.stop();
    const refused = await post([sshFailure('100.64.21.2', 1)]);
    assert.equal(refused.statusCode, 503, refused.body);
    const rows = await t.platform.db.withTenant(t.tenantId, (tx) => tx.selectFrom('ingest_batches').select('batch_id').execute());
    assert.equal(rows.length, 1, 'the refused batch left no row behind');
  });
});
