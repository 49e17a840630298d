import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { startThrowawayRedis } from '../../helpers/servers.js';

// Events from the last minutes: a block runs from the event that earned it, so blocks of these events are in force now.
const BASE_MS = Math.floor(Date.now() / 60_000) * 60_000 - 600_000;
const at = (s: number) => new Date(BASE_MS + s * 1000).toISOString();

/** A mixed stream touching several default rules: brute force, stuffing, scan, WAF, scanner UA, denylist, benign. */
function eventStream(): object[] {
  const events: object[] = [];
  for (let i = 0; i < 11; i++)
    events.push({ source: 'sshd', event_type: 'auth.failure', occurred_at: at(i), payload: { service: 'ssh', src_ip: '100.64.10.1', username: `u${i}` } });
  for (let p = 1; p <= 20; p++)
    events.push({
      source: 'fw',
      event_type: 'net.connection',
      occurred_at: at(20 + p),
      payload: { src_ip: '100.64.10.2', dst_ip: '100.64.0.1', dst_port: 1000 + p },
    });
  events.push({ source: 'waf', event_type: 'waf.alert', occurred_at: at(45), payload: { src_ip: '100.64.10.3', category: 'sqli' } });
  events.push({
    source: 'nginx',
    event_type: 'http.request',
    occurred_at: at(46),
    payload: { src_ip: '100.64.10.4', path: '/', status: 200, user_agent: 'sqlmap/1.7' },
  });
  events.push({ source: 'nginx', event_type: 'http.request', occurred_at: at(47), payload: { src_ip: '2001:db8::5', path: '/', status: 200 } });
  events.push({ source: 'nginx', event_type: 'http.request', occurred_at: at(48), payload: { src_ip: '100.64.10.6', path: '/index.html', status: 200 } });
  events.push({ source: 'sso', event_type: 'auth.failure', occurred_at: at(49), payload: { service: 'sso', username: 'alice' } });
  return events;
}

interface Outcome {
  threat_level: string;
  score: number;
  rules_triggered: string[];
  mitigations: unknown[];
  entity: string;
}

async function decideAll(t: TestApp, key: string): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const e of eventStream()) {
    const res = await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': key }, payload: e });
    assert.equal(res.statusCode, 200, res.body);
    const d = res.json();
    out.push({ threat_level: d.threat_level, score: d.score, rules_triggered: d.rules_triggered, mitigations: d.mitigations, entity: d.entity });
  }
  return out;
}

const sensorKey = async (t: TestApp, tenantId = t.tenantId) => (await t.auth.store.createKey({ tenantId, scopes: ['defend:write', 'decisions:read'] })).key;

describe('decisions are deterministic across fresh apps and window stores', () => {
  it('the same events give the same levels, rules and mitigations on PGlite, Postgres, and Postgres with Redis windows', async (ctx) => {
    const redis = await startThrowawayRedis('decisions-determinism-redis-pw');
    ctx.after(() => redis.stop());
    const results: Outcome[][] = [];
    for (const setup of [{ db: 'embedded' as const }, { db: 'postgres' as const }, { db: 'postgres' as const, env: { FG_REDIS_URL: redis.url } }]) {
      const t = await startTestApp(setup);
      try {
        const client = t.platform.redis;
        if (client && client.status !== 'ready') await once(client, 'ready', { signal: AbortSignal.timeout(10_000) }); // bound, not a synchronisation
        results.push(await decideAll(t, await sensorKey(t)));
        if (client) assert.ok((await client.keys('fg:win:*')).length > 0, 'the Redis app kept its correlation windows in Redis');
      } finally {
        await t.close();
      }
    }
    const [first, ...rest] = results;
    for (const r of rest) assert.deepEqual(r, first);

    // The stream really exercised the rules, so equality above is not equality of nothing.
    const levels = first!.map((o) => o.threat_level);
    assert.deepEqual(levels.slice(0, 4), ['none', 'none', 'none', 'none']);
    assert.equal(levels[4], 'high');
    assert.ok(first![9]!.rules_triggered.includes('credential-stuffing'), JSON.stringify(first![9]));
    assert.equal(levels[9], 'critical');
    assert.ok(first![30]!.rules_triggered.includes('port-scan'));
    assert.equal(first![29]!.threat_level, 'none');
    assert.ok(first![31]!.rules_triggered.includes('waf-sqli'));
    assert.ok(first![32]!.rules_triggered.includes('known-bad-user-agent'));
    assert.deepEqual([first![33]!.entity, first![33]!.rules_triggered], ['ip:2001:db8::5', ['denylisted-source']]);
    assert.equal(first![34]!.threat_level, 'none');
    assert.equal(first![35]!.entity, 'user:alice');
  });
});

for (const db of ['embedded', 'postgres'] as const) {
  describe(`decisions API: filters, pagination, active blocks, metrics (${db})`, () => {
    let t: TestApp;
    let key: string;
    before(async () => {
      t = await startTestApp({ db });
      key = await sensorKey(t);
      await decideAll(t, key);
    });
    after(async () => t?.close());
    const get = (url: string, k = key) => t.app.inject({ url, headers: { 'x-api-key': k } });

    it('filters by threat level, rule and entity (any spelling of an IP, or an entity key)', async () => {
      const all = (await get('/decisions?limit=500')).json().decisions;
      assert.equal(all.length, eventStream().length);
      const high = (await get('/decisions?threat_level=high&limit=500')).json().decisions;
      assert.ok(high.length > 0 && high.every((d: Outcome) => d.threat_level === 'high'));
      const scans = (await get('/decisions?rule=port-scan')).json().decisions;
      assert.deepEqual(
        scans.map((d: Outcome) => d.entity),
        ['ip:100.64.10.2'],
      );
      for (const spelling of ['2001:DB8::5', '2001:db8:0:0:0:0:0:5', 'ip:2001:db8::5']) {
        const found = (await get(`/decisions?entity=${encodeURIComponent(spelling)}`)).json().decisions;
        assert.deepEqual(
          found.map((d: Outcome) => d.entity),
          ['ip:2001:db8::5'],
          spelling,
        );
      }
      assert.equal((await get('/decisions?entity=user:alice')).json().decisions.length, 1);
      assert.equal((await get(`/decisions?entity=${encodeURIComponent('::ffff:100.64.10.1')}&limit=500`)).json().decisions.length, 11);
      const bad = await get('/decisions?entity=not-an-ip');
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.match(bad.json().detail, /querystring\/entity/);
    });

    it('filters by since/until on the decision time', async () => {
      const all = (await get('/decisions?limit=500')).json().decisions as Array<{ created_at: string }>;
      const oldest = all[all.length - 1]!.created_at;
      assert.equal((await get(`/decisions?until=${encodeURIComponent(oldest)}`)).json().decisions.length, 0);
      assert.equal((await get(`/decisions?since=${encodeURIComponent(oldest)}&limit=500`)).json().decisions.length, all.length);
      assert.equal((await get(`/decisions?since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`)).json().decisions.length, 0);
      assert.equal((await get('/decisions?since=yesterday')).statusCode, 400);
    });

    it('pages with an opaque cursor: every decision once, newest first; bad cursors and limits are 400', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { decisions: Array<{ decision_id: string }>; next_cursor: string | null } = (
          await get(`/decisions?limit=7${cursor ? `&cursor=${cursor}` : ''}`)
        ).json();
        assert.ok(page.decisions.length <= 7);
        seen.push(...page.decisions.map((d) => d.decision_id));
        cursor = page.next_cursor;
      } while (cursor);
      const all = (await get('/decisions?limit=500')).json().decisions.map((d: { decision_id: string }) => d.decision_id);
      assert.deepEqual(seen, all);
      assert.equal(new Set(seen).size, eventStream().length);
      assert.equal((await get('/decisions?limit=501')).statusCode, 400);
      assert.equal((await get('/decisions?limit=0')).statusCode, 400);
      const badCursor = await get('/decisions?cursor=not-a-cursor');
      assert.equal(badCursor.statusCode, 400);
      assert.match(badCursor.json().detail, /cursor/);
    });

    it('does not skip decisions stored within the same millisecond when paging', async () => {
      const tenant = `same-ms-${db}`;
      await t.auth.store.createTenant(tenant);
      const k = await sensorKey(t, tenant);
      // Three rows 100 µs apart inside one millisecond: a cursor rounded to milliseconds loses two.
      const ids = [1, 2, 3].map((i) => `dec_samems${String(i).padStart(18, '0')}`);
      await t.platform.db.withTenant(tenant, async (tx) => {
        for (const [i, id] of ids.entries()) {
          await sql`INSERT INTO decisions (decision_id, tenant_id, event_digest, event, entity, threat_level, score, rules_triggered, mitigations, explanation, ruleset_version, doctrine_version, ledger_index, path, occurred_at, created_at)
            VALUES (${id}, ${tenant}, ${'0'.repeat(64)}, '{}'::jsonb, 'ip:100.64.99.1', 'none', 0, '{}', '[]'::jsonb, '', 'v', 'v', ${i}, 'defend', now(), ${`2026-11-20T12:00:00.123${i + 1}00Z`}::timestamptz)`.execute(
            tx,
          );
        }
      });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { decisions: Array<{ decision_id: string }>; next_cursor: string | null } = (
          await get(`/decisions?limit=1${cursor ? `&cursor=${cursor}` : ''}`, k)
        ).json();
        seen.push(...page.decisions.map((d) => d.decision_id));
        cursor = page.next_cursor;
      } while (cursor);
      assert.deepEqual(seen, [...ids].reverse());

      // A cursor of this tenant's is no way into another tenant's rows.
      const firstPage = (await get('/decisions?limit=1', k)).json();
      assert.deepEqual((await get(`/decisions?cursor=${firstPage.next_cursor}`)).json().decisions, []);
    });

    it('lists active blocks by IP in any spelling, refuses a non-IP, and hides them from other tenants', async () => {
      const active = (await get(`/decisions/active?ip=${encodeURIComponent('::ffff:100.64.10.1')}`)).json().decisions;
      assert.ok(active.length >= 1);
      for (const d of active) {
        assert.equal(d.entity, 'ip:100.64.10.1');
        assert.ok(d.mitigations.some((m: { action: string; applied: boolean }) => m.action === 'block_ip' && m.applied));
      }
      assert.deepEqual((await get('/decisions/active?ip=100.64.10.6')).json().decisions, [], 'no block for a benign source');
      const all = (await get('/decisions/active')).json().decisions.map((d: Outcome) => d.entity);
      assert.ok(all.includes('ip:100.64.10.2') && all.includes('ip:2001:db8::5'));
      const bad = await get('/decisions/active?ip=100.64.10.256');
      assert.equal(bad.statusCode, 400);
      assert.match(bad.json().detail, /querystring\/ip/);
      const other = `active-other-${db}`;
      await t.auth.store.createTenant(other);
      assert.deepEqual((await get('/decisions/active', await sensorKey(t, other))).json().decisions, []);
    });

    it('decides an event_id once even when the same event arrives concurrently: one row, one ledger entry', async () => {
      const size = async () => (await get('/ledger/checkpoint?fresh=true')).json().tree_size as number;
      const sizeBefore = await size();
      const event = {
        source: 'sshd',
        event_type: 'auth.failure',
        event_id: `concurrent-${db}`,
        occurred_at: at(55),
        payload: { service: 'ssh', src_ip: '100.64.10.9', username: 'root' },
      };
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': key }, payload: event })),
      );
      assert.deepEqual(
        answers.map((a) => a.statusCode),
        Array(6).fill(200),
      );
      assert.equal(new Set(answers.map((a) => a.json().decision_id)).size, 1);
      assert.equal((await get('/decisions?entity=100.64.10.9')).json().decisions.length, 1);
      assert.equal(await size(), sizeBefore + 1);
    });

    it('counts decisions by threat level and path and times evaluate()', async () => {
      const text = (await t.app.inject({ url: '/metrics' })).body;
      const count = (level: string) => Number(new RegExp(`^decisions_total\\{threat_level="${level}",path="defend"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      const levels = (await get('/decisions?limit=500')).json().decisions.map((d: Outcome) => d.threat_level) as string[];
      for (const level of ['none', 'high', 'critical']) assert.equal(count(level), levels.filter((l) => l === level).length, level);
      const evaluated = Number(/^decision_evaluate_duration_seconds_count\{path="defend"\} (\d+)$/m.exec(text)?.[1]);
      assert.ok(evaluated >= eventStream().length, text.slice(0, 200));
      // Every /defend request joins one group commit; replays of a known event_id too (not evaluated).
      const groups = Number(/^decision_group_size_count\{path="defend"\} (\d+)$/m.exec(text)?.[1]);
      const grouped = Number(/^decision_group_size_sum\{path="defend"\} (\d+)$/m.exec(text)?.[1]);
      assert.ok(groups >= 1 && grouped >= groups && grouped >= evaluated, `${groups} groups of ${grouped} events, ${evaluated} evaluated`);
    });
  });
}
