import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../helpers/app.js';

const event = (i: number) => ({
  source: 'nginx',
  event_type: 'http.request',
  occurred_at: new Date(Date.now() - 60_000).toISOString(),
  payload: { src_ip: `100.64.${(i >> 8) & 255}.${i & 255}`, path: '/', status: 200 },
});
const batch = (n: number, from = 0) => ({ events: Array.from({ length: n }, (_, i) => event(from + i)) });

/** Polls a condition with a deadline (no sleep stands in for synchronisation). */
async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * /ingest refuses a batch whole (503 + Retry-After) while the accepted work waiting to be decided
 * is over its bound, in events or in seconds of work; the backlog is in /health/detailed and
 * /metrics. Without it a producer faster than the deciders grew the queue without bound.
 */
describe('/ingest backpressure', () => {
  let t: TestApp;
  let key: string;
  before(async () => {
    t = await startTestApp({ db: 'postgres', env: { FG_INGEST_MAX_BACKLOG_EVENTS: '1000', FG_INGEST_MAX_BACKLOG_S: '3600' } });
    key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['ingest:write'] })).key;
  });
  after(async () => t?.close());

  const ingest = (payload: object) => t.app.inject({ method: 'POST', url: '/ingest', headers: { 'x-api-key': key }, payload });
  const backlog = async () => {
    const res = await t.app.inject({ url: '/health/detailed', headers: { 'x-api-key': t.adminKey } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().checks.ingest_backlog as { ok: boolean; events: number; batches: number; seconds_of_work: number; accepting: boolean };
  };
  const batchRows = async () => Number((await sql<{ n: string }>`SELECT count(*) AS n FROM ingest_batches`.execute(t.platform.db.db)).rows[0]!.n);
  it('refuses a batch that would take the backlog over FG_INGEST_MAX_BACKLOG_EVENTS, accepting none of it, until the deciders catch up', async () => {
    await t.decisions.ingest.stop();
    assert.equal((await ingest(batch(600))).statusCode, 202);
    assert.equal((await ingest(batch(400, 600))).statusCode, 202, 'exactly at the bound is accepted');
    const rowsBefore = await batchRows();

    const refused = await ingest(batch(1, 1000));
    assert.equal(refused.statusCode, 503, refused.body);
    assert.equal(refused.headers['content-type'], 'application/problem+json; charset=utf-8');
    const retry = Number(refused.headers['retry-after']);
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After ${refused.headers['retry-after']}`);
    const problem = refused.json();
    assert.equal(problem.code, 'unavailable');
    assert.equal(problem.backlog_events, 1000);
    assert.match(problem.detail, /nothing of this batch was accepted/);
    assert.equal(await batchRows(), rowsBefore, 'the refused batch left no row');

    const seen = await backlog();
    assert.equal(seen.ok, true, 'a full backlog is reported, it does not fail readiness');
    assert.equal(seen.events, 1000);
    assert.equal(seen.batches, 2);
    assert.equal(seen.accepting, false);
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /^ingest_backlog_events 1000$/m);
    assert.match(metrics, /^ingest_backlog_seconds [0-9.e+-]+$/m);

    // The deciders drain it; then batches are accepted again.
    t.decisions.ingest.start();
    await until(backlog, (b) => b.events === 0, 'backlog drained');
    assert.equal((await ingest(batch(10, 2000))).statusCode, 202);
  });
});

describe('/ingest backpressure in seconds of work', () => {
  let t: TestApp;
  let key: string;
  before(async () => {
    t = await startTestApp({ db: 'postgres', env: { FG_INGEST_MAX_BACKLOG_S: '1' } });
    key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['ingest:write'] })).key;
  });
  after(async () => t?.close());
  const ingest = (payload: object) => t.app.inject({ method: 'POST', url: '/ingest', headers: { 'x-api-key': key }, payload });
  const backlog = async () =>
    (await t.app.inject({ url: '/health/detailed', headers: { 'x-api-key': t.adminKey } })).json().checks.ingest_backlog as {
      events: number;
      seconds_of_work: number;
      decided_per_s: number;
    };

  it('refuses while the waiting work stands for more than FG_INGEST_MAX_BACKLOG_S seconds at the measured decide rate; before a rate is measured only the events bound applies', async () => {
    await t.decisions.ingest.stop();
    // Nothing decided yet: no rate, so waiting batches (e.g. one a restart left for redelivery)
    // are no sign of overload, however long they wait.
    for (let i = 0; i < 3; i++) assert.equal((await ingest(batch(1000, i * 1000))).statusCode, 202);
    assert.equal((await backlog()).seconds_of_work, 0);
    t.decisions.ingest.start();
    await until(backlog, (b) => b.events === 0, 'backlog drained');

    // With a measured rate r, waiting batches are accepted until they stand for more than one
    // second of work (more than r events), then refused whole: whatever r this machine reaches.
    assert.equal((await ingest(batch(1, 5000))).statusCode, 202);
    await until(backlog, (b) => b.events === 0, 'backlog drained');
    await t.decisions.ingest.stop();
    const rate = (await backlog()).decided_per_s;
    assert.ok(rate > 0, `measured decide rate ${rate}/s`);
    let waiting = 0;
    let refused: Awaited<ReturnType<typeof ingest>> | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const res = await ingest(batch(1000, 6000 + i * 1000));
      if (res.statusCode === 503) refused = res;
      else {
        assert.equal(res.statusCode, 202, res.body);
        assert.ok(waiting / rate <= 1, `accepted while ${waiting} events stood for ${waiting / rate} s of work`);
        waiting += 1000;
      }
    }
    assert.ok(refused, `refused once ${waiting} events stood for more than 1 s at ${rate}/s`);
    // The health view rounds the rate; the server compares with the exact one.
    assert.ok(waiting / rate > 0.99, `refused only past the bound (${waiting / rate} s)`);
    assert.ok(refused.json().backlog_seconds >= 1);
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    t.decisions.ingest.start();
    await until(backlog, (b) => b.events === 0, 'backlog drained');
  });
});
