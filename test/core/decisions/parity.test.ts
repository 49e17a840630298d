import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startTestApp, type TestApp } from '../../helpers/app.js';

/**
 * /defend and /ingest are one decision path: the same events, in the same order, for two fresh
 * tenants (one through each endpoint) give the same threat levels, rules and mitigations.
 */
const BASE_MS = Math.floor(Date.now() / 60_000) * 60_000 - 1_200_000;
const IPS = ['100.64.40.1', '100.64.40.2', '198.51.100.9', '2001:db8::7'];

const eventArb = fc.record({
  kind: fc.constantFrom('ssh', 'web', 'conn', 'waf', 'http', 'ok'),
  ip: fc.constantFrom(...IPS),
  user: fc.constantFrom('alice', 'bob', 'carol', 'dave', 'erin', 'root'),
  port: fc.integer({ min: 1, max: 40 }),
  category: fc.constantFrom('sqli', 'xss', 'lfi'),
  ua: fc.constantFrom('sqlmap/1.7', 'Mozilla/5.0', 'nikto', 'curl/8.0'),
  gapS: fc.integer({ min: 0, max: 20 }),
});
type Gen = typeof eventArb extends fc.Arbitrary<infer T> ? T : never;

function toEvents(gens: Gen[]): object[] {
  let t = BASE_MS;
  return gens.map((g) => {
    t += g.gapS * 1000;
    const occurred_at = new Date(t).toISOString();
    switch (g.kind) {
      case 'ssh':
        return { source: 'sshd', event_type: 'auth.failure', occurred_at, payload: { service: 'ssh', src_ip: g.ip, username: g.user } };
      case 'web':
        return { source: 'web', event_type: 'auth.failure', occurred_at, payload: { service: 'web', src_ip: g.ip, username: g.user } };
      case 'conn':
        return { source: 'fw', event_type: 'net.connection', occurred_at, payload: { src_ip: g.ip, dst_ip: '100.64.0.1', dst_port: 1000 + g.port } };
      case 'waf':
        return { source: 'waf', event_type: 'waf.alert', occurred_at, payload: { src_ip: g.ip, category: g.category } };
      case 'http':
        return { source: 'nginx', event_type: 'http.request', occurred_at, payload: { src_ip: g.ip, path: '/', status: 200, user_agent: g.ua } };
      default:
        return { source: 'sshd', event_type: 'auth.success', occurred_at, payload: { service: 'ssh', src_ip: g.ip, username: g.user } };
    }
  });
}

const outcome = (d: { threat_level: string; rules_triggered: string[]; mitigations: unknown[] }) => ({
  threat_level: d.threat_level,
  rules: [...d.rules_triggered].sort(),
  mitigations: d.mitigations,
});

describe('/defend and /ingest parity', () => {
  let t: TestApp;
  let run = 0;
  before(async () => {
    t = await startTestApp({ db: 'embedded' });
  });
  after(async () => t?.close());

  it('the same generated events give the same threat_level, rules and mitigations through both endpoints', async () => {
    const levels = new Set<string>();
    let mitigated = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 40 }), async (gens) => {
        run++;
        const events = toEvents(gens);
        const keys: string[] = [];
        for (const side of ['defend', 'ingest']) {
          const tenant = `parity-${side}-${run}`;
          await t.auth.store.createTenant(tenant);
          keys.push((await t.auth.store.createKey({ tenantId: tenant, scopes: ['defend:write', 'ingest:write', 'decisions:read'] })).key);
        }
        const [defendKey, ingestKey] = keys as [string, string];
        const viaDefend = [];
        for (const e of events) {
          const res = await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': defendKey }, payload: e });
          assert.equal(res.statusCode, 200, res.body);
          viaDefend.push(outcome(res.json()));
        }
        const accepted = await t.app.inject({ method: 'POST', url: '/ingest', headers: { 'x-api-key': ingestKey }, payload: { events } });
        assert.equal(accepted.statusCode, 202, accepted.body);
        const batchId = accepted.json().batch_id;
        const deadline = Date.now() + 30_000;
        let status;
        do {
          status = (await t.app.inject({ url: `/ingest/batches/${batchId}`, headers: { 'x-api-key': ingestKey } })).json();
          if (Date.now() > deadline) throw new Error(`batch still ${status.status}`);
          if (status.status !== 'completed') await new Promise((resolve) => setImmediate(resolve));
        } while (status.status !== 'completed');
        const viaIngest = [];
        for (const id of status.decision_ids)
          viaIngest.push(outcome((await t.app.inject({ url: `/decisions/${id}`, headers: { 'x-api-key': ingestKey } })).json()));
        assert.deepEqual(viaIngest, viaDefend);
        for (const d of viaDefend) {
          levels.add(d.threat_level);
          if (d.mitigations.length > 0) mitigated++;
        }
      }),
      { numRuns: 15 },
    );
    // The comparison means something only if the streams reached rules and mitigations.
    assert.ok(levels.size >= 3, `levels seen: ${[...levels].join(', ')}`);
    assert.ok(mitigated > 0, 'some decisions proposed mitigations');
  });
});
