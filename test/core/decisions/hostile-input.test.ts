import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { acceptablePayload, acceptableText, hostilePayload, hostileString } from '../engine/hostile.js';

const occurredAt = () => new Date(Date.now() - 60_000).toISOString();
/** A hostile event: any payload, and now and then a hostile source. */
const hostileEvent = fc.record({
  source: fc.oneof({ weight: 4, arbitrary: fc.constant('sensor-prop') }, { weight: 1, arbitrary: hostileString }),
  payload: hostilePayload,
  src_ip: fc.ipV4(),
});
type HostileEvent = typeof hostileEvent extends fc.Arbitrary<infer T> ? T : never;
const toEvent = (e: HostileEvent) => ({ source: e.source, event_type: 'http.request', occurred_at: occurredAt(), payload: { ...e.payload, src_ip: e.src_ip } });
const acceptable = (e: HostileEvent) => acceptableText(e.source, 128) && acceptablePayload(toEvent(e).payload, true);

for (const db of ['embedded', 'postgres'] as const) {
  describe(`/defend and /ingest with hostile keys and strings never answer 5xx (${db}, property)`, () => {
    let t: TestApp;
    let key: string;
    before(async () => {
      t = await startTestApp({ db });
      key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['defend:write', 'ingest:write', 'decisions:read'] })).key;
    });
    after(async () => t?.close());
    // JSON.stringify writes a lone surrogate as a \\udXXX escape and an own __proto__ member as a member: what a client sends.
    const post = (url: string, body: unknown) =>
      t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    const runs = db === 'embedded' ? 150 : 60;

    it('/defend: a valid event is decided whatever its keys are called; anything else is 400/422, never 5xx', async () => {
      let decided = 0;
      await fc.assert(
        fc.asyncProperty(hostileEvent, async (e) => {
          const res = await post('/defend', toEvent(e));
          assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body}`);
          if (acceptable(e)) {
            assert.equal(res.statusCode, 200, res.body);
            assert.equal(res.json().tenant_id, t.tenantId);
            assert.equal(res.json().entity, `ip:${e.src_ip}`);
            decided++;
          } else {
            assert.ok([400, 422].includes(res.statusCode), `${res.statusCode} ${res.body}`);
            assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
          }
        }),
        { numRuns: runs },
      );
      assert.ok(decided > runs / 5, `only ${decided} of ${runs} generated events were valid: the generator tests too little`);
    });

    it('/ingest: a batch of valid events is accepted, one hostile event refuses it whole, never 5xx', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(hostileEvent, { minLength: 1, maxLength: 3 }), async (events) => {
          const res = await post('/ingest', { events: events.map(toEvent) });
          assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body}`);
          if (events.every(acceptable)) assert.equal(res.statusCode, 202, res.body);
          else assert.ok([400, 422].includes(res.statusCode), `${res.statusCode} ${res.body}`);
        }),
        { numRuns: Math.round(runs / 2) },
      );
    });
  });
}
