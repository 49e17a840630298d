import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../../helpers/app.js';

/**
 * Issue 20 point 9: 16 to 50 bouncers starting at once (`/v1/decisions/stream?startup=true`) took
 * every connection of the Postgres pool (10) for seconds; startups got 503 after the pool's 3 s
 * wait, and so did the API-key checks of unrelated requests (store_unavailable). Here the main pool
 * is held entirely by other work for the whole storm: the startups answer from the in-memory block
 * set, and key lookups go through the gate pool (Database.gate), so all of them succeed.
 * Bench: npm run bench -- bouncer-storm (10,000 blocks, /defend latency during the storm).
 */
const BLOCKS = 600;
const BOUNCERS = 50;
const POOL = 10;

describe('bouncer startup storm against a pool of 10', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ db: 'postgres', env: { FG_DB_POOL_SIZE: String(POOL) } });
  });
  after(async () => t?.close());

  it(
    `${BOUNCERS} concurrent full startups all succeed while every connection ` + `of the main pool is taken, and so does an unrelated request's key lookup`,
    async () => {
      const sensor = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['ingest:write'] })).key;
      // Denylisted sources (240.0.0.0/4): one 24 h block each, a second apart (the doctrine allows 200 blocks a minute).
      const startMs = Date.now() - BLOCKS * 1000 - 60_000;
      const events = Array.from({ length: BLOCKS }, (_, n) => ({
        source: 'fw',
        event_type: 'net.connection',
        occurred_at: new Date(startMs + n * 1000).toISOString(),
        payload: { src_ip: `240.1.${n >> 8}.${n & 255}`, dst_ip: '100.64.0.1', dst_port: 22 },
      }));
      const accepted = await t.app.inject({ method: 'POST', url: '/ingest', headers: { 'x-api-key': sensor }, payload: { events } });
      assert.equal(accepted.statusCode, 202, accepted.body);
      const batch = accepted.json().batch_id as string;
      for (;;) {
        const status = (await t.app.inject({ url: `/ingest/batches/${batch}`, headers: { 'x-api-key': sensor } })).json().status;
        if (status === 'completed') break;
        assert.notEqual(status, 'failed');
        await new Promise((resolve) => setTimeout(resolve, 50)); // waiting on the ingest consumer's work, not ours
      }
      // One at a time: 50 concurrent creations on a pool of 10 can outwait its 3 s acquire timeout on a
      // loaded machine, and that setup is not what this test is about.
      const bouncers: string[] = [];
      for (let i = 0; i < BOUNCERS; i++) {
        bouncers.push((await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['bouncer:read'], name: `edge-${i}` })).key);
      }
      const unrelated = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'], name: 'dashboard' })).key;
      // One lookup loads the tenant's block set (and the deployed rate-limit policy), as any bouncer traffic would.
      const warm = await t.app.inject({ url: '/v1/decisions?ip=240.1.0.1', headers: { 'x-api-key': bouncers[0]! } });
      assert.equal(warm.statusCode, 200, warm.body);

      // Every connection of the main pool, held by transactions that wait until the storm is over.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let entered = 0;
      let allEntered!: () => void;
      const poolTaken = new Promise<void>((resolve) => (allEntered = resolve));
      const holders = Array.from({ length: POOL }, () =>
        t.platform.db.transaction(async () => {
          if (++entered === POOL) allEntered();
          await released;
        }),
      );
      try {
        await poolTaken;
        const [startups, other] = await Promise.all([
          Promise.all(bouncers.map((key) => t.app.inject({ url: '/v1/decisions/stream?startup=true', headers: { 'x-api-key': key } }))),
          // A request of another route class, by a key no lookup has cached: its check reads the key store.
          t.app.inject({ url: '/openapi.json', headers: { 'x-api-key': unrelated } }),
        ]);
        const statuses = startups.map((r) => r.statusCode);
        assert.deepEqual(
          statuses,
          statuses.map(() => 200),
          startups.find((r) => r.statusCode !== 200)?.body,
        );
        for (const r of startups) assert.equal(r.json().new.length, BLOCKS, 'every startup has every block in force');
        assert.equal(other.statusCode, 200, other.body);
      } finally {
        release();
        await Promise.all(holders);
      }
    },
  );
});
