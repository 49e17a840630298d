import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseEd25519PrivateKey } from '../../../src/platform/crypto/ed25519.js';
import { publicKeyOf } from '../../../src/platform/crypto/ed25519.js';
import { idPattern } from '../../../src/platform/ids.js';
import { DatabaseReplayGuard } from '../../../src/forge/tokens/replay.js';
import { stripeSignatureHeader } from '../../../src/forge/spawn/stripe.js';
import { ScenarioTokens } from '../../../src/forge/tokens/scenario-tokens.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { forgeTestEnv, namespacesOf, type ForgeTestEnv } from './helpers.js';

/**
 * The spawn API end to end on one server process running every role: entitlement from a
 * signed receipt, Cedar gates, quotas, idempotency, the SAT handoff to the real orchestrator
 * building real netns labs, access tokens, the operator endpoints and the Stripe webhook.
 * Real labs are kept to two (the tiny two-host template).
 */
describe('POST /v1/spawn end to end', () => {
  let fx: ForgeTestEnv;
  let t: TestApp;
  const learner = `alice-${randomBytes(3).toString('hex')}`;
  let entitlementToken = '';
  let first: Record<string, string>;

  const spawn = (body: Record<string, unknown>, headers: Record<string, string> = {}, url = '/v1/spawn') =>
    t.app.inject({ method: 'POST', url, headers: { 'x-api-key': t.adminKey, 'x-client-id': 'web-1', ...headers }, payload: body });
  const metric = async (labels: string) => {
    const text = (await t.app.inject({ url: '/metrics' })).body;
    const line = text.split('\n').find((l) => l.startsWith(`spawns_total{${labels}}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const securityLines = (type: string) => (t.logs?.lines ?? []).filter((l) => l.logger === 'frostgate.security' && l.type === type);
  const auditActions = async () => {
    const size = await t.ledger.ledger.size(t.tenantId, 'audit');
    const entries = await t.ledger.ledger.entries(t.tenantId, 'audit', 0, size);
    return entries.map((e) => e.record as { action: string; target?: string; details: Record<string, unknown> });
  };

  before(async () => {
    fx = forgeTestEnv({ FG_QUOTA_MAX_CONCURRENT_PER_SUBJECT: '1', FG_QUOTA_MAX_SPAWNS_PER_DAY: '3' });
    t = await startTestApp({ env: fx.env, captureLogs: true });
  });
  after(async () => {
    await t?.close();
    await fx?.cleanup();
  });

  it('an unknown track is 422 naming the tracks of the templates present', async () => {
    const res = await spawn({ track: 'cissp', subject: learner, request_id: 'r-unknown-track' });
    assert.equal(res.statusCode, 422, res.body);
    assert.deepEqual(res.json().valid_tracks, ['ccna', 'netplus']);
    assert.match(res.json().detail, /valid tracks: ccna, netplus/);
    assert.equal(await metric('track="unknown",result="invalid_track"'), 1);
  });

  it('without an entitlement the training gate refuses with 403 and the reason, logged as a security event', async () => {
    const res = await spawn({ track: 'netplus', subject: learner, request_id: 'r-no-ent' });
    assert.equal(res.statusCode, 403, res.body);
    assert.deepEqual(res.json().reasons, ['training.no_entitlement']);
    assert.match(res.json().detail, /no entitlement/);
    const logged = securityLines('spawn_refused').find((l) => l.request_id === 'r-no-ent');
    assert.ok(logged, 'refusal in the security log');
    assert.deepEqual(logged.reasons, ['training.no_entitlement']);
    assert.equal(await metric('track="netplus",result="refused_entitlement"'), 1);
  });

  it('a receipt with a bad signature is refused; a good one is exchanged once, the grant an audit entry', async () => {
    const good = fx.receipt({ tenant: t.tenantId, subject: learner, track: 'netplus', credits: 5 });
    const [body, mac] = good.split('.');
    const forged = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), credits: 500 })).toString('base64url')}.${mac}`;
    const bad = await t.app.inject({ method: 'POST', url: '/v1/entitlements/exchange', headers: { 'x-api-key': t.adminKey }, payload: { receipt: forged } });
    assert.equal(bad.statusCode, 403, bad.body);
    assert.equal(bad.json().reason, 'receipt_invalid');
    assert.match(bad.json().detail, /signature does not verify/);

    const ok = await t.app.inject({ method: 'POST', url: '/v1/entitlements/exchange', headers: { 'x-api-key': t.adminKey }, payload: { receipt: good } });
    assert.equal(ok.statusCode, 201, ok.body);
    assert.deepEqual([ok.json().track, ok.json().tier, ok.json().credits, ok.json().credits_used, ok.json().subject], ['netplus', 'pro', 5, 0, learner]);
    entitlementToken = ok.json().entitlement_token;

    const again = await t.app.inject({ method: 'POST', url: '/v1/entitlements/exchange', headers: { 'x-api-key': t.adminKey }, payload: { receipt: good } });
    assert.equal(again.statusCode, 409, again.body);
    assert.equal(again.json().reason, 'receipt_replayed');

    const other = fx.receipt({ tenant: 'other-tenant', subject: learner, track: 'netplus' });
    const cross = await t.app.inject({ method: 'POST', url: '/v1/entitlements/exchange', headers: { 'x-api-key': t.adminKey }, payload: { receipt: other } });
    assert.equal(cross.statusCode, 403, cross.body);
    assert.equal(cross.json().code, 'tenant_mismatch');

    const grants = (await auditActions()).filter((a) => a.action === 'entitlement.grant');
    assert.equal(grants.length, 1);
    assert.equal(grants[0]!.target, ok.json().entitlement_id);
    assert.equal(grants[0]!.details.credits, 5);
  });

  it('an entitlement for another track does not open this one (403), nor does a forged entitlement token', async () => {
    const ccna = await spawn({ track: 'ccna', subject: learner, request_id: 'r-ccna' }, { 'x-entitlement-token': entitlementToken });
    assert.equal(ccna.statusCode, 403, ccna.body);
    assert.deepEqual(ccna.json().reasons, ['training.entitlement_wrong_track']);
    const forged = await spawn(
      { track: 'netplus', subject: learner, request_id: 'r-forged' },
      { 'x-entitlement-token': `${entitlementToken.slice(0, -4)}AAAA` },
    );
    assert.equal(forged.statusCode, 403, forged.body);
    assert.equal(forged.json().reason, 'entitlement_invalid');
  });

  it('the happy path: spawn builds a real lab through the orchestrator, charges one credit, returns working tokens', async () => {
    // Two deliveries of the same request at once (a client retrying on a timeout): one lab.
    const [a, b] = await Promise.all([
      spawn({ track: 'netplus', subject: learner, request_id: 'r-happy-1' }, { 'x-request-id': 'r-happy-1', 'x-entitlement-token': entitlementToken }),
      spawn({ track: 'netplus', subject: learner, request_id: 'r-happy-1' }, { 'x-entitlement-token': entitlementToken }),
    ]);
    const res = a.statusCode === 201 ? a : b;
    const twin = res === a ? b : a;
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(twin.statusCode, 200, twin.body);
    assert.equal(twin.json().scenario_id, res.json().scenario_id);
    assert.equal(twin.json().replayed, true);
    first = res.json();
    assert.equal(first.request_id, 'r-happy-1');
    assert.match(first.scenario_id!, idPattern('scn'));
    assert.equal(first.state, 'running');
    assert.equal(first.access_url, `http://localhost:80/v1/access/${first.scenario_id}?token=${encodeURIComponent(first.access_token!)}`);
    const ttl = Date.parse(first.expires_at!) - Date.now();
    assert.ok(ttl > 29 * 60_000 && ttl <= 30 * 60_000, `access token lives 30 minutes (${ttl} ms)`);
    assert.equal(namespacesOf(fx.runtime, first.scenario_id!).length, 3, 'two devices and the switch exist on the host');

    const scn = await t.app.inject({ url: `/v1/scenarios/${first.scenario_id}`, headers: { 'x-api-key': t.adminKey } });
    assert.equal(scn.statusCode, 200, scn.body);
    assert.deepEqual([scn.json().state, scn.json().subject, scn.json().track, scn.json().template_id], ['running', learner, 'netplus', 'netplus-tiny']);
    assert.deepEqual(
      scn
        .json()
        .devices.map((d: { name: string }) => d.name)
        .sort(),
      ['h1', 'h2'],
    );

    const charges = (await auditActions()).filter((a) => a.action === 'billing.charge');
    assert.equal(charges.length, 1);
    assert.deepEqual(
      [charges[0]!.target, charges[0]!.details.mode, charges[0]!.details.credits, charges[0]!.details.amount_cents],
      [first.scenario_id, 'fake_charge', 1, 0],
    );
    const used = await t.platform.db.withTenant(t.tenantId, (tx) =>
      tx
        .selectFrom('billing_events' as never)
        .selectAll()
        .execute(),
    );
    assert.equal((used as unknown[]).length, 2, 'a grant and a charge are billing events');
    assert.equal(await metric('track="netplus",result="created"'), 1);
  });

  it('a retry with the same request_id answers the same scenario; the same request_id with another body is 409', async () => {
    const retry = await spawn({ track: 'netplus', subject: learner, request_id: 'r-happy-1' }, { 'x-entitlement-token': entitlementToken }, '/api/spawn');
    assert.equal(retry.statusCode, 200, retry.body);
    assert.equal(retry.json().scenario_id, first.scenario_id);
    assert.equal(retry.json().replayed, true);
    assert.equal(retry.json().state, 'running');
    const other = await spawn({ track: 'netplus', subject: `${learner}-b`, request_id: 'r-happy-1' });
    assert.equal(other.statusCode, 409, other.body);
    assert.equal(other.json().reason, 'request_id_reused');
    const charges = (await auditActions()).filter((a) => a.action === 'billing.charge');
    assert.equal(charges.length, 1, 'a retry charges nothing');
    assert.equal(await metric('track="netplus",result="replayed"'), 2);
  });

  it('a second lab for the same learner is over the concurrent quota: 429 with the reason, no lab built', async () => {
    const res = await spawn({ track: 'netplus', subject: learner, request_id: 'r-quota' });
    assert.equal(res.statusCode, 429, res.body);
    assert.deepEqual(res.json().reasons, ['quota.subject_concurrent']);
    assert.equal(res.json().usage.activeLabsSubject, 1);
    assert.match(res.json().detail, /most labs running at once/);
    assert.equal((await fx.runtime.list()).length, 1, 'still only the first lab');
    const wrongHeader = await spawn({ track: 'netplus', subject: learner, request_id: 'r-x' }, { 'x-request-id': 'r-y' });
    assert.equal(wrongHeader.statusCode, 400, 'x-request-id and request_id must agree');
    assert.ok(securityLines('spawn_refused').some((l) => l.request_id === 'r-quota' && l.refusal === 'quota'));
  });

  it('the access URL works once: replayed, wrong-scenario and expired tokens are each a clear refusal', async () => {
    // The access page (src/forge/access) serves the URL; the token is spent on first use.
    const url = new URL(first.access_url!);
    const ok = await t.app.inject({ url: url.pathname + url.search });
    assert.equal(ok.statusCode, 303, ok.body);
    assert.match(String(ok.headers['set-cookie']), /HttpOnly/i);
    const refusal = (res: { body: string }) => /data-reason="([a-z_]+)"/.exec(res.body)?.[1];
    const replayed = await t.app.inject({ url: url.pathname + url.search });
    assert.equal(replayed.statusCode, 401);
    assert.equal(refusal(replayed), 'replayed');

    const key = parseEd25519PrivateKey(readFileSync(fx.tokenKeyPath), fx.tokenKeyPath);
    const signer = { privateKey: key, publicKey: publicKeyOf(key), kid: 'test', source: fx.tokenKeyPath };
    const past = new ScenarioTokens(signer, new DatabaseReplayGuard(t.platform.db), () => Date.now() - 31 * 60_000);
    const claims = { tenant: t.tenantId, subject: learner, scenarioId: first.scenario_id!, track: 'netplus' };
    const expired = await past.issue('access', claims);
    const exp = await t.app.inject({ url: `/v1/access/${first.scenario_id}?token=${encodeURIComponent(expired.token)}` });
    assert.equal(exp.statusCode, 401);
    assert.equal(refusal(exp), 'expired');

    const retry = await spawn({ track: 'netplus', subject: learner, request_id: 'r-happy-1' });
    const wrong = await t.app.inject({ url: `/v1/access/scn_000000000000000000000000?token=${encodeURIComponent(retry.json().access_token)}` });
    assert.equal(wrong.statusCode, 403);
    assert.equal(refusal(wrong), 'wrong_scenario');
    assert.ok(securityLines('access_refused').length >= 3);
  });

  it('the orchestrator refuses a missing, invalid or already used SAT', async () => {
    const create = (headers: Record<string, string>) =>
      t.app.inject({ method: 'POST', url: '/v1/scenarios', headers: { 'x-api-key': t.adminKey, ...headers }, payload: {} });
    const missing = await create({});
    assert.equal(missing.statusCode, 401, missing.body);
    assert.equal(missing.json().reason, 'sat_missing');
    const invalid = await create({ 'x-sat': 'not.a.token' });
    assert.equal(invalid.statusCode, 403);
    assert.equal(invalid.json().reason, 'sat_malformed');
    const used = await create({ 'x-sat': first.sat! });
    assert.equal(used.statusCode, 403);
    assert.equal(used.json().reason, 'sat_replayed');
    const access = await create({ 'x-sat': first.access_token! });
    assert.equal(access.statusCode, 403, 'an access token is not a SAT');
    assert.equal(access.json().reason, 'sat_wrong_audience');
    assert.equal((await fx.runtime.list()).length, 1);
    assert.ok(securityLines('sat_refused').length >= 4);
  });

  it('operator endpoints extend, reset and destroy the lab; destroying twice is 409, an unknown scenario 404', async () => {
    const id = first.scenario_id!;
    const before = (await t.app.inject({ url: `/v1/scenarios/${id}`, headers: { 'x-api-key': t.adminKey } })).json();
    const ext = await t.app.inject({ method: 'POST', url: `/v1/scenarios/${id}/extend`, headers: { 'x-api-key': t.adminKey }, payload: { minutes: 15 } });
    assert.equal(ext.statusCode, 200, ext.body);
    assert.equal(Date.parse(ext.json().expires_at) - Date.parse(before.expires_at), 15 * 60_000);
    const reset = await t.app.inject({ method: 'POST', url: `/v1/scenarios/${id}/reset`, headers: { 'x-api-key': t.adminKey }, payload: {} });
    assert.equal(reset.statusCode, 200, reset.body);
    assert.equal(reset.json().state, 'running');
    assert.equal(namespacesOf(fx.runtime, id).length, 3, 'the lab was rebuilt');
    const del = await t.app.inject({ method: 'DELETE', url: `/v1/scenarios/${id}`, headers: { 'x-api-key': t.adminKey } });
    assert.equal(del.statusCode, 200, del.body);
    assert.equal(del.json().state, 'destroyed');
    assert.deepEqual(namespacesOf(fx.runtime, id), []);
    const again = await t.app.inject({ method: 'DELETE', url: `/v1/scenarios/${id}`, headers: { 'x-api-key': t.adminKey } });
    assert.equal(again.statusCode, 409);
    const missing = await t.app.inject({ url: '/v1/scenarios/scn_111111111111111111111111', headers: { 'x-api-key': t.adminKey } });
    assert.equal(missing.statusCode, 404);
  });

  it('a Stripe checkout webhook grants an entitlement only with a valid signature, once; that entitlement pays for a spawn', async () => {
    const session = {
      id: `cs_test_${randomBytes(6).toString('hex')}`,
      payment_status: 'paid',
      amount_total: 4900,
      currency: 'eur',
      metadata: { tenant_id: t.tenantId, subject: `${learner}-s`, track: 'ccna', tier: 'pro', credits: '2' },
    };
    const payload = JSON.stringify({ id: 'evt_1', type: 'checkout.session.completed', data: { object: session } });
    const post = (sig: string | undefined, body = payload) =>
      t.app.inject({
        method: 'POST',
        url: '/v1/billing/stripe/webhook',
        headers: { 'content-type': 'application/json', ...(sig ? { 'stripe-signature': sig } : {}) },
        payload: body,
      });
    const now = Math.floor(Date.now() / 1000);

    const unsigned = await post(undefined);
    assert.equal(unsigned.statusCode, 400, unsigned.body);
    assert.equal(unsigned.json().reason, 'stripe_signature_invalid');
    const wrongSecret = await post(stripeSignatureHeader(payload, 'whsec_wrong', now));
    assert.equal(wrongSecret.statusCode, 400);
    const tampered = await post(stripeSignatureHeader(payload, fx.stripeSecret, now), payload.replace('"credits":"2"', '"credits":"200"'));
    assert.equal(tampered.statusCode, 400, 'the signature covers the exact body');
    assert.ok(securityLines('stripe_webhook_refused').length >= 3);

    const ok = await post(stripeSignatureHeader(payload, fx.stripeSecret, now));
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { received: true, outcome: 'granted', entitlement_id: `ent_stripe_${session.id}` });
    const redelivered = await post(stripeSignatureHeader(payload, fx.stripeSecret, now));
    assert.equal(redelivered.json().outcome, 'already_granted');
    const other = JSON.stringify({ id: 'evt_2', type: 'invoice.paid', data: { object: {} } });
    assert.equal((await post(stripeSignatureHeader(other, fx.stripeSecret, now), other)).json().outcome, 'ignored');
    const ghost = JSON.stringify({
      id: 'evt_3',
      type: 'checkout.session.completed',
      data: { object: { ...session, id: 'cs_ghost', metadata: { ...session.metadata, tenant_id: 'no-such-tenant' } } },
    });
    const ghostRes = await post(stripeSignatureHeader(ghost, fx.stripeSecret, now), ghost);
    assert.equal(ghostRes.statusCode, 422, ghostRes.body);
    assert.equal(ghostRes.json().reason, 'unknown_tenant');
    const grant = (await auditActions()).filter((a) => a.action === 'entitlement.grant' && a.target === `ent_stripe_${session.id}`);
    assert.equal(grant.length, 1);
    assert.deepEqual([grant[0]!.details.amount_cents, grant[0]!.details.currency, grant[0]!.details.mode], [4900, 'eur', 'stripe']);

    // The stored grant pays for a spawn without any token presented (a second real lab). Two
    // spawns at once with the learner allowed one lab: exactly one is built, the other is 429.
    const both = await Promise.all(['r-stripe-1', 'r-stripe-2'].map((id) => spawn({ track: 'ccna', subject: `${learner}-s`, request_id: id })));
    assert.deepEqual(both.map((r) => r.statusCode).sort(), [201, 429], both.map((r) => r.body).join('\n'));
    const res = both.find((r) => r.statusCode === 201)!;
    assert.deepEqual(both.find((r) => r.statusCode === 429)!.json().reasons, ['quota.subject_concurrent']);
    assert.equal(res.json().state, 'running');
    const del = await t.app.inject({ method: 'DELETE', url: `/v1/scenarios/${res.json().scenario_id}`, headers: { 'x-api-key': t.adminKey } });
    assert.equal(del.statusCode, 200);
  });

  it('daily and per-tenant quotas: 429 naming the limit (Retry-After for the daily one); refused spawns leave no row', async () => {
    const rows = await t.platform.db.withTenant(t.tenantId, (tx) =>
      tx
        .selectFrom('spawn_requests' as never)
        .selectAll()
        .execute(),
    );
    assert.equal((rows as unknown[]).length, 2, 'only the two launched spawns left a row');
    const carol = `${learner}-carol`;
    const erin = `${learner}-erin`;
    for (const who of [carol, erin]) {
      const ex = await t.app.inject({
        method: 'POST',
        url: '/v1/entitlements/exchange',
        headers: { 'x-api-key': t.adminKey },
        payload: { receipt: fx.receipt({ tenant: t.tenantId, subject: who, track: 'netplus' }) },
      });
      assert.equal(ex.statusCode, 201, ex.body);
    }
    // Carol already spawned three labs today (since destroyed): the fourth is over the daily cap.
    const insert = (requestId: string, subject: string, status: 'launched' | 'pending') =>
      t.platform.db.withTenant(t.tenantId, (tx) =>
        tx
          .insertInto('spawn_requests' as never)
          .values({
            tenant_id: t.tenantId,
            request_id: requestId,
            body_digest: 'x',
            subject,
            track: 'netplus',
            template_id: 'netplus-tiny',
            template_version: 'v',
            scenario_id: `scn_${randomBytes(12).toString('hex')}`,
            status,
          } as never)
          .execute(),
      );
    for (let i = 0; i < 3; i++) await insert(`seed-carol-${i}`, carol, 'launched');
    const daily = await spawn({ track: 'netplus', subject: carol, request_id: 'r-carol-4' });
    assert.equal(daily.statusCode, 429, daily.body);
    assert.deepEqual(daily.json().reasons, ['quota.daily_spawns']);
    const retryAfter = Number(daily.headers['retry-after']);
    assert.ok(retryAfter > 0 && retryAfter <= 86_400, `Retry-After until the next UTC day: ${retryAfter}`);

    // Twenty labs being built for others fill the tenant (default limit 20).
    for (let i = 0; i < 20; i++) await insert(`seed-pending-${i}`, `someone-${i}`, 'pending');
    const tenantFull = await spawn({ track: 'netplus', subject: erin, request_id: 'r-erin-1' });
    assert.equal(tenantFull.statusCode, 429, tenantFull.body);
    assert.deepEqual(tenantFull.json().reasons, ['quota.tenant_concurrent']);
    assert.equal(tenantFull.json().limits.maxConcurrentPerTenant, 20);
    assert.equal(await metric('track="netplus",result="refused_quota"'), 3);
    assert.equal(await metric('track="ccna",result="refused_quota"'), 1);
    assert.equal((await fx.runtime.list()).length, 0, 'no refused spawn built anything');
  });
});
