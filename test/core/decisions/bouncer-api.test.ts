import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { BouncerDecisions, ENDED_RETENTION_MS } from '../../../src/core/decisions/bouncer.js';
import { goDuration } from '../../../src/core/decisions/crowdsec-format.js';
import { Value } from '@sinclair/typebox/value';
import { StreamResponseSchema } from '../../../src/core/decisions/routes.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

/** Five SSH failures in a few seconds: a 3600 s block_ip, running from the last event's time. */
const bruteForce = (ip: string, lastAtMs: number) =>
  [0, 1, 2, 3, 4].map((i) => ({
    source: 'sshd',
    event_type: 'auth.failure',
    occurred_at: new Date(lastAtMs - (4 - i) * 1000).toISOString(),
    payload: { service: 'ssh', src_ip: ip, username: `u${i}` },
  }));

it('formats durations as Go does', () => {
  assert.equal(goDuration(0), '0s');
  assert.equal(goDuration(250), '250ms');
  assert.equal(goDuration(5_000), '5s');
  assert.equal(goDuration(65_500), '1m5.5s');
  assert.equal(goDuration(3_600_000 + 5_000), '1h0m5s');
  assert.equal(goDuration(3 * 3_600_000 + 59 * 60_000 + 58_123), '3h59m58.123s');
  assert.equal(goDuration(-3_000), '-3s');
  assert.equal(goDuration(5_050), '5.05s');
  assert.equal(goDuration(5_005), '5.005s');
  assert.equal(goDuration(5_100), '5.1s');
  assert.equal(goDuration(60_010), '1m0.01s');
  assert.equal(goDuration(-65_500.4), '-1m5.5s');
  assert.equal(goDuration(999.6), '1s');
  assert.equal(goDuration(-0.4), '0s');
  // Every millisecond count up to two minutes formats as Go's Duration.String() does (reference: toFixed, zeros stripped).
  for (let ms = 1000; ms < 120_000; ms += 7) {
    const m = Math.floor(ms / 60_000);
    const sec = ((ms - m * 60_000) / 1000).toFixed(3).replace(/\.?0+$/, '');
    assert.equal(goDuration(ms), m > 0 ? `${m}m${sec}s` : `${sec}s`);
  }
});

describe('CrowdSec bouncer API', () => {
  let t: TestApp;
  let sensor: string;
  let bouncer: string;
  before(async () => {
    t = await startTestApp({ db: 'embedded' });
    sensor = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['defend:write'] })).key;
    bouncer = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['bouncer:read'] })).key;
  });
  after(async () => t?.close());
  const get = (url: string, key = bouncer) => t.app.inject({ url, headers: { 'x-api-key': key } });
  const defendAll = async (events: object[]) => {
    for (const e of events)
      assert.equal((await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': sensor }, payload: e })).statusCode, 200);
  };

  it('answers null for an IP without a block, and the block in CrowdSec shape once FrostGate decides one', async () => {
    assert.equal((await get('/v1/decisions?ip=100.64.50.1')).body, 'null');
    await defendAll(bruteForce('100.64.50.1', Date.now() - 1000));
    const res = await get('/v1/decisions?ip=100.64.50.1');
    assert.equal(res.statusCode, 200);
    const [d, ...rest] = res.json();
    assert.equal(rest.length, 0);
    assert.deepEqual([d.origin, d.type, d.scope, d.value, d.simulated], ['frostgate', 'ban', 'Ip', '100.64.50.1', false]);
    assert.ok(Number.isInteger(d.id) && d.id > 0);
    assert.match(d.duration, /^59m5\d(\.\d+)?s$/, 'remaining time of a 3600 s block');
    assert.match(d.scenario, /ssh-brute-force/);
    // The same block by value, by range and by scope; other types and scopes have none.
    assert.equal((await get('/v1/decisions?scope=ip&value=100.64.50.1')).json()[0].id, d.id);
    assert.equal((await get('/v1/decisions?range=100.64.50.0/24')).json()[0].id, d.id);
    assert.equal((await get('/v1/decisions?scope=range&value=100.64.0.0/16')).json()[0].id, d.id);
    assert.equal((await get('/v1/decisions?ip=100.64.50.1&type=captcha')).body, 'null');
    assert.equal((await get('/v1/decisions?range=100.64.51.0/24')).body, 'null');
    assert.equal((await get('/v1/decisions?ip=not-an-ip')).statusCode, 400);
    assert.equal((await get('/v1/decisions?range=100.64.0.0/33')).statusCode, 400);
  });

  it('streams everything in force on startup, then only new blocks and ended ones, per bouncer key', async () => {
    const startRes = await get('/v1/decisions/stream?startup=true');
    assert.match(String(startRes.headers['content-type']), /^application\/json/);
    const start = startRes.json();
    // The route sends JSON the block set built by hand: it is the declared schema, member for member.
    assert.ok(Value.Check(StreamResponseSchema, start), JSON.stringify([...Value.Errors(StreamResponseSchema, start)].slice(0, 3)));
    const lookedUp = (await get('/v1/decisions?ip=100.64.50.1')).json()[0];
    const streamed = start.new.find((d: { value: string }) => d.value === '100.64.50.1');
    assert.ok(streamed, 'the block is in the startup');
    assert.deepEqual(Object.keys(streamed), Object.keys(lookedUp));
    assert.deepEqual({ ...streamed, duration: '' }, { ...lookedUp, duration: '' });
    assert.match(streamed.duration, /^59m5\d(\.\d+)?s$/);
    assert.deepEqual(start.deleted, []);
    assert.deepEqual((await get('/v1/decisions/stream')).json(), { new: [], deleted: [] }, 'nothing changed since the last pull');

    // A block that ends in a few seconds (its events are an hour old), and one that lasts.
    await defendAll(bruteForce('100.64.50.2', Date.now() - 3_600_000 + 3000));
    await defendAll(bruteForce('100.64.50.3', Date.now()));
    const delta = (await get('/v1/decisions/stream')).json();
    const values = (list: Array<{ value: string }>) => list.map((d) => d.value).sort();
    // On a slow machine the short block may have ended before this pull: then it is deleted, not new.
    const endedAlready = values(delta.deleted).includes('100.64.50.2');
    assert.deepEqual(values(delta.new), endedAlready ? ['100.64.50.3'] : ['100.64.50.2', '100.64.50.3']);
    assert.deepEqual(values(delta.deleted), endedAlready ? ['100.64.50.2'] : []);

    // Another bouncer key has its own position: its first pull is a full snapshot.
    const second = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['bouncer:read'] })).key;
    const snapshot = values((await get('/v1/decisions/stream', second)).json().new).filter((v) => v !== '100.64.50.2');
    assert.deepEqual(snapshot, ['100.64.50.1', '100.64.50.3']);

    const deadline = Date.now() + 15_000;
    let ended: Array<{ value: string }> = endedAlready ? delta.deleted : [];
    while (ended.length === 0) {
      if (Date.now() > deadline) throw new Error('the short block never appeared in deleted');
      // Waiting for wall-clock expiry, not for our own work; at most 20 pulls per 10 s (the key's stream budget is 30).
      await new Promise((resolve) => setTimeout(resolve, 500));
      ended = (await get('/v1/decisions/stream')).json().deleted;
    }
    assert.deepEqual(
      ended.map((d) => d.value),
      ['100.64.50.2'],
    );
    assert.equal((await get('/v1/decisions?ip=100.64.50.2')).body, 'null');
    assert.equal((await get('/v1/decisions?ip=100.64.50.3')).json().length, 1);
  });

  it('bouncer keys are read-only and tenant-bound; other keys need the scope', async () => {
    const event = bruteForce('100.64.50.9', Date.now())[0];
    assert.equal((await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': bouncer }, payload: event })).statusCode, 403);
    assert.equal((await get('/decisions')).statusCode, 403);
    assert.equal((await get('/v1/decisions?ip=100.64.50.1', sensor)).statusCode, 403);
    const other = 'bouncer-other';
    await t.auth.store.createTenant(other);
    const otherBouncer = (await t.auth.store.createKey({ tenantId: other, scopes: ['bouncer:read'] })).key;
    assert.equal((await get('/v1/decisions?ip=100.64.50.1', otherBouncer)).body, 'null', "another tenant's bouncer sees none of this tenant's blocks");
    assert.deepEqual((await get('/v1/decisions/stream?startup=true', otherBouncer)).json(), { new: [], deleted: [] });
  });

  it("errors on bouncer paths carry CrowdSec's members (`message`, `errors` as a string) beside the problem+json ones", async () => {
    const wrong = `fg_${'b'.repeat(12)}_${'x'.repeat(43)}`;
    const cases: Array<[string, string | undefined, number, string]> = [
      ['/v1/decisions/stream?startup=true', wrong, 401, 'unauthorized'],
      ['/v1/decisions?ip=100.64.50.1', undefined, 401, 'unauthorized'],
      ['/v1/decisions?ip=100.64.50.1', sensor, 403, 'missing_scope'],
      ['/v1/decisions?ip=not-an-ip', bouncer, 400, 'validation_failed'],
      ['/v1/decisions/stream?startup=maybe', bouncer, 400, 'validation_failed'],
    ];
    for (const [url, key, status, code] of cases) {
      const res = await t.app.inject({ url, headers: key ? { 'x-api-key': key } : {} });
      assert.equal(res.statusCode, status, `${url}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const body = res.json();
      assert.equal(body.code, code);
      assert.equal(typeof body.message, 'string', `${url}: CrowdSec 1.4.6 clients dereference message unchecked`);
      assert.equal(body.message, body.detail);
      assert.ok(body.type && body.title && body.request_id, 'the problem+json members stay');
      if (body.errors !== undefined) assert.equal(typeof body.errors, 'string', `${url}: CrowdSec's errors member is a string`);
    }
    const invalid = (await get('/v1/decisions?ip=not-an-ip')).json();
    assert.equal(invalid.errors, 'querystring/ip: must be an IPv4 or IPv6 address');
    // An endpoint of CrowdSec's API FrostGate does not serve (newer bouncers POST usage metrics; a 404 is what they expect of an older LAPI).
    const metrics = await t.app.inject({ method: 'POST', url: '/v1/usage-metrics', headers: { 'x-api-key': bouncer }, payload: {} });
    assert.equal(metrics.statusCode, 404);
    assert.equal(metrics.json().message, metrics.json().detail);
    // FrostGate's own routes keep the plain problem shape (errors as a list).
    const own = await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': sensor }, payload: { source: 'sshd' } });
    assert.equal(own.statusCode, 400);
    assert.equal(own.json().message, undefined);
    assert.ok(Array.isArray(own.json().errors));
  });

  it("another process's lookups: cached for 1 s, then the stale set answers while one read refreshes it, never past 5 s", async () => {
    let now = Date.now();
    const elsewhere = new BouncerDecisions(t.platform.db, () => now);
    const lookup = async (ip: string) => ((await elsewhere.query(t.tenantId, { ip })) ?? []).length;
    await defendAll(bruteForce('100.64.51.1', Date.now()));
    assert.equal(await lookup('100.64.51.1'), 1);

    await defendAll(bruteForce('100.64.51.2', Date.now()));
    now += 500;
    assert.equal(await lookup('100.64.51.2'), 0, 'within the TTL the cached set answers');
    now += 600;
    assert.equal(await lookup('100.64.51.2'), 0, 'past the TTL the stale set answers at once, while a read refreshes it');
    const deadline = Date.now() + 5000;
    while ((await lookup('100.64.51.2')) === 0) {
      assert.ok(Date.now() < deadline, 'the refresh never landed');
      await new Promise((resolve) => setImmediate(resolve));
    }

    await defendAll(bruteForce('100.64.51.3', Date.now()));
    now += 5000;
    assert.equal(await lookup('100.64.51.3'), 1, 'a set 5 s old is not served: the lookup waits for a fresh read');
  });

  it('a stream position outlives its process: another process continues from it (no snapshot), reading its own set up to it first', async () => {
    const key = `key_${randomBytes(6).toString('hex')}`;
    let nowA = Date.now();
    const nowB = Date.now();
    const a = new BouncerDecisions(t.platform.db, () => nowA);
    const b = new BouncerDecisions(t.platform.db, () => nowB);
    await b.query(t.tenantId, { ip: '100.64.53.9' }); // b's set, read before the blocks below; its clock stands still, so it stays "fresh"
    await defendAll(bruteForce('100.64.53.1', Date.now()));
    nowA += 1;
    const startup = await a.stream(t.tenantId, key, { startup: true });
    assert.ok(startup.new.some((d) => d.value === '100.64.53.1'));
    await a.close(); // a stops: the position it served is written
    await defendAll(bruteForce('100.64.53.2', Date.now()));
    const next = await b.stream(t.tenantId, key, { startup: false });
    assert.deepEqual(
      next.new.map((d) => d.value),
      ['100.64.53.2'],
      'exactly what was decided after the pull a answered',
    );
    // (Blocks of earlier tests may end within the few seconds between the pulls: they are deleted, ours are not.)
    assert.ok(!next.deleted.some((d) => d.value.startsWith('100.64.53.')));
    assert.deepEqual((await b.stream(t.tenantId, key, { startup: false })).new, [], 'and nothing twice from the same process');
    await b.close();
  });

  it('startups within one second share one snapshot as of its start; a block that ended during that second is deleted by the next pull', async () => {
    // A block ending at .500 of a second about a minute from now (a 3600 s block from its last event).
    const lastAtMs = (Math.floor(Date.now() / 1000) - 3600 + 60) * 1000 + 500;
    await defendAll(bruteForce('100.64.55.1', lastAtMs));
    const untilMs = lastAtMs + 3_600_000;
    let now = untilMs + 200; // 200 ms after the block ended, in the same second
    const d = new BouncerDecisions(t.platform.db, () => now);
    const [k1, k2] = [`key_${randomBytes(6).toString('hex')}`, `key_${randomBytes(6).toString('hex')}`];
    const first = await d.streamBody(t.tenantId, k1, { startup: true });
    const second = await d.streamBody(t.tenantId, k2, { startup: true });
    assert.equal(first, second, 'one serialization for both startups');
    const listed = JSON.parse(first.toString()).new.find((x: { value: string }) => x.value === '100.64.55.1');
    assert.equal(listed?.duration, '500ms', 'in force at the start of the second, with its remaining time then');
    now += 1000;
    const next = await d.stream(t.tenantId, k1, { startup: false });
    assert.ok(
      next.deleted.some((x) => x.value === '100.64.55.1'),
      'the bouncer is told it ended',
    );
    await d.close();
  });

  it('a pull whose last position is older than the set remembers reads the ended blocks from the database', async () => {
    const key = `key_${randomBytes(6).toString('hex')}`;
    let now = Date.now();
    const c = new BouncerDecisions(t.platform.db, () => now);
    await defendAll(bruteForce('100.64.54.1', Date.now() - 3_600_000 + 60_000)); // ends in about a minute
    assert.ok((await c.stream(t.tenantId, key, { startup: true })).new.some((d) => d.value === '100.64.54.1'));
    now += ENDED_RETENTION_MS + 5 * 60_000; // the bouncer comes back 15 minutes later: the set has long forgotten that block
    assert.equal(await c.query(t.tenantId, { ip: '100.64.54.1' }), null);
    const back = await c.stream(t.tenantId, key, { startup: false });
    assert.ok(
      back.deleted.some((d) => d.value === '100.64.54.1'),
      'the ended block is reported deleted',
    );
    assert.ok(!back.new.some((d) => d.value === '100.64.54.1'));
    await c.close();
  });

  it('a refresh adds what was decided since and drops what ended; the longest block of an IP answers', async () => {
    let now = Date.now();
    const elsewhere = new BouncerDecisions(t.platform.db, () => now);
    const durationOf = async (ip: string) => (await elsewhere.query(t.tenantId, { ip }))?.[0]?.duration ?? 'none';
    await defendAll(bruteForce('100.64.52.1', Date.now() - 3_600_000 + 120_000)); // ends in about two minutes
    assert.match(await durationOf('100.64.52.1'), /^(1m5\d|2m0)/);
    await defendAll(bruteForce('100.64.52.1', Date.now()));
    now += 5000;
    assert.match(await durationOf('100.64.52.1'), /^59m/, 'the longer block, decided later, answers for the IP');

    await defendAll(bruteForce('100.64.52.2', Date.now() - 3_600_000 + 60_000)); // ends in about a minute
    now += 5000;
    assert.match(await durationOf('100.64.52.2'), /^\d+(\.\d+)?s$/);
    now += 120_000;
    assert.equal(await durationOf('100.64.52.2'), 'none', 'an ended block leaves the set');
    assert.match(await durationOf('100.64.52.1'), /^57m/, 'the longer block still answers as it runs down');
  });
});
