import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { BillingLedger } from '../../../src/forge/spawn/billing.js';
import { EntitlementService } from '../../../src/forge/spawn/entitlements.js';
import { runCli } from '../../helpers/cli.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { forgeTestEnv, namespacesOf, tinyTemplateYaml, type ForgeTestEnv } from './helpers.js';

/**
 * A newcomer's first steps on a default start, over HTTP and the CLI: an entitlement from a
 * fake_charge receipt (admin only, refused where fake_charge is), the catalogue with what the
 * entitlement allows, a spawn of a chosen template gated by the tier, no x-client-id needed.
 */
describe('receipts, the catalogue and spawning a chosen template', () => {
  let fx: ForgeTestEnv;
  let t: TestApp;
  let baseUrl: string;
  const learner = `newcomer-${randomBytes(3).toString('hex')}`;
  const admin = () => ({ 'x-api-key': t.adminKey });
  let spawnKey = '';
  let spawnKeyId = '';

  before(async () => {
    fx = forgeTestEnv();
    // A second netplus template that needs the enterprise tier: the template gate's case.
    writeFileSync(path.join(fx.env.FG_TEMPLATES_DIR!, 'netplus-tiny-enterprise.yaml'), tinyTemplateYaml('netplus-tiny-enterprise', 'netplus', 'enterprise'));
    t = await startTestApp({ env: fx.env });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const key = await t.app.inject({ method: 'POST', url: '/keys', headers: admin(), payload: { scopes: ['forge:spawn'], name: 'lms' } });
    assert.equal(key.statusCode, 201, key.body);
    spawnKey = key.json().key;
    spawnKeyId = key.json().id;
  });
  after(async () => {
    await t?.close();
    await fx?.cleanup();
  });

  it('POST /v1/receipts: an admin issues a fake_charge receipt, exchanged at once into an entitlement; a spawn key cannot', async () => {
    const refused = await t.app.inject({
      method: 'POST',
      url: '/v1/receipts',
      headers: { 'x-api-key': spawnKey },
      payload: { track: 'netplus', subject: learner },
    });
    assert.equal(refused.statusCode, 403, refused.body);
    const res = await t.app.inject({ method: 'POST', url: '/v1/receipts', headers: admin(), payload: { track: 'netplus', subject: learner, credits: 3 } });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    assert.deepEqual(
      [body.subject, body.track, body.tier, body.credits, body.credits_used, body.billing_mode],
      [learner, 'netplus', 'pro', 3, 0, 'fake_charge'],
    );
    assert.match(body.entitlement_id, /^ent_dev_[0-9a-f]{18}$/);
    // The receipt is real (signed under RECEIPT_HMAC_SECRET) and already spent.
    const again = await t.app.inject({ method: 'POST', url: '/v1/entitlements/exchange', headers: admin(), payload: { receipt: body.receipt } });
    assert.equal(again.statusCode, 409, again.body);
    assert.equal(again.json().reason, 'receipt_replayed');
    // A grant: a billing event in fake_charge mode and an audit entry.
    const billing = await t.platform.db.withTenant(t.tenantId, (tx) =>
      sql<{
        kind: string;
        mode: string;
        credits: number;
      }>`SELECT kind, mode, credits FROM billing_events WHERE entitlement_id = ${body.entitlement_id}`.execute(tx),
    );
    assert.deepEqual(billing.rows, [{ kind: 'grant', mode: 'fake_charge', credits: 3 }]);
    const size = await t.ledger.ledger.size(t.tenantId, 'audit');
    const audit = (await t.ledger.ledger.entries(t.tenantId, 'audit', 0, size)).map((e) => e.record as { action: string; target?: string });
    assert.ok(audit.some((a) => a.action === 'entitlement.grant' && a.target === body.entitlement_id));
  });

  it('receipts are refused outside dev, test and staging, and without fake_charge', async () => {
    const secrets = { receiptHmacSecret: randomBytes(32).toString('base64'), etHmacSecret: randomBytes(32).toString('base64') };
    const ledger = new BillingLedger(t.ledger.audit);
    for (const [mode, profile] of [
      ['fake_charge', 'prod'],
      ['stripe', 'dev'],
    ] as const) {
      const service = new EntitlementService(t.platform.db, ledger, secrets, mode, profile);
      await assert.rejects(
        service.issueDevReceipt(t.tenantId, { subject: learner, track: 'ccna' }, 'test'),
        (err: Error & { extensions?: Record<string, unknown> }) => err.extensions?.reason === 'fake_charge_only',
        `${mode} in ${profile}`,
      );
    }
    const granted = await t.platform.db.withTenant(t.tenantId, (tx) =>
      sql<{ n: string }>`SELECT count(*) AS n FROM entitlements WHERE track = 'ccna'`.execute(tx),
    );
    assert.equal(Number(granted.rows[0]!.n), 0, 'nothing was granted');
  });

  it('GET /v1/catalog lists every template by track; with ?subject= it says what the entitlement allows and why not', async () => {
    const plain = await t.app.inject({ url: '/v1/catalog', headers: { 'x-api-key': spawnKey } });
    assert.equal(plain.statusCode, 200, plain.body);
    const tracks = plain.json().tracks as Array<{ track: string; templates: Array<Record<string, unknown>>; entitlement?: unknown }>;
    assert.deepEqual(
      tracks.map((tr) => [tr.track, tr.templates.map((x) => x.id)]),
      [
        ['ccna', ['ccna-tiny']],
        ['netplus', ['netplus-tiny', 'netplus-tiny-enterprise']],
      ],
    );
    assert.deepEqual(
      { ...tracks[1]!.templates[0], version: 'v' },
      { id: 'netplus-tiny', version: 'v', title: 'Tiny netplus', description: '', tier: 'basic', difficulty: null, duration_minutes: 30, devices: 2 },
    );
    assert.equal(tracks[0]!.entitlement, undefined, 'no entitlement without a subject');

    const mine = await t.app.inject({ url: `/v1/catalog?subject=${learner}`, headers: { 'x-api-key': spawnKey } });
    assert.equal(mine.statusCode, 200, mine.body);
    const byTrack = Object.fromEntries((mine.json().tracks as Array<{ track: string }>).map((tr) => [tr.track, tr])) as unknown as Record<
      string,
      { templates: Array<{ id: string; allowed: boolean; refusals: Array<{ reason: string }> }>; entitlement: { credits_left: number; tier: string } | null }
    >;
    assert.deepEqual(
      byTrack.netplus!.templates.map((x) => [x.id, x.allowed, x.refusals.map((r) => r.reason)]),
      [
        ['netplus-tiny', true, []],
        ['netplus-tiny-enterprise', false, ['training.tier_insufficient']],
      ],
    );
    assert.deepEqual([byTrack.netplus!.entitlement?.tier, byTrack.netplus!.entitlement?.credits_left], ['pro', 3]);
    assert.equal(byTrack.ccna!.entitlement, null);
    assert.deepEqual(
      byTrack.ccna!.templates[0]!.refusals.map((r) => r.reason),
      ['training.no_entitlement'],
    );
  });

  it('spawn takes a template of the track: another track’s is 422, one above the tier is 403, no x-client-id needed', async () => {
    const spawn = (body: Record<string, unknown>) =>
      t.app.inject({ method: 'POST', url: '/v1/spawn', headers: { 'x-api-key': spawnKey }, payload: { subject: learner, ...body } });
    const wrongTrack = await spawn({ track: 'netplus', template: 'ccna-tiny', request_id: 'tpl-wrong-track' });
    assert.equal(wrongTrack.statusCode, 422, wrongTrack.body);
    assert.deepEqual([wrongTrack.json().reason, wrongTrack.json().valid_templates], ['unknown_template', ['netplus-tiny', 'netplus-tiny-enterprise']]);
    const aboveTier = await spawn({ track: 'netplus', template: 'netplus-tiny-enterprise', request_id: 'tpl-enterprise' });
    assert.equal(aboveTier.statusCode, 403, aboveTier.body);
    assert.deepEqual(aboveTier.json().reasons, ['training.tier_insufficient']);

    const ok = await spawn({ track: 'netplus', template: 'netplus-tiny', request_id: 'tpl-ok' });
    assert.equal(ok.statusCode, 201, ok.body);
    const scn = await t.app.inject({ url: `/v1/scenarios/${ok.json().scenario_id}`, headers: admin() });
    assert.equal(scn.json().template_id, 'netplus-tiny');
    // Without x-client-id the spawn is attributed to the key that made it.
    const row = await t.platform.db.withTenant(t.tenantId, (tx) =>
      sql<{ client_id: string }>`SELECT client_id FROM spawn_requests WHERE request_id = 'tpl-ok'`.execute(tx),
    );
    assert.equal(row.rows[0]?.client_id, `key:${spawnKeyId}`);
    // The same request_id naming another template is another request: 409.
    const changed = await spawn({ track: 'netplus', template: 'netplus-tiny-enterprise', request_id: 'tpl-ok' });
    assert.equal(changed.statusCode, 409, changed.body);
  });

  it('extensions are limited by policies/extend.cedar and audited; End lab grades, removes the lab and is audited', async () => {
    const row = await t.platform.db.withTenant(t.tenantId, (tx) =>
      sql<{ scenario_id: string }>`SELECT scenario_id FROM spawn_requests WHERE request_id = 'tpl-ok'`.execute(tx),
    );
    const id = row.rows[0]!.scenario_id;
    // The learner's browser: the access link of a retried spawn opens the session.
    const again = await t.app.inject({
      method: 'POST',
      url: '/v1/spawn',
      headers: { 'x-api-key': spawnKey },
      payload: { subject: learner, track: 'netplus', template: 'netplus-tiny', request_id: 'tpl-ok' },
    });
    const link = await fetch(again.json().access_url.replace(/^http:\/\/[^/]+/, baseUrl), { redirect: 'manual' });
    assert.equal(link.status, 303);
    const cookie = (link.headers.get('set-cookie') ?? '').split(';')[0]!;
    const post = (path: string) =>
      fetch(`${baseUrl}/v1/access/${id}/${path}`, { method: 'POST', headers: { cookie, origin: baseUrl, 'content-type': 'application/json' }, body: '{}' });
    const first = await post('extend');
    assert.equal(first.status, 200, await first.clone().text());
    const second = await post('extend');
    assert.equal(second.status, 403, 'a basic lab is extended once (the tier default)');
    const refusal = (await second.json()) as { reason: string; reasons: string[] };
    assert.deepEqual([refusal.reason, refusal.reasons], ['extension_limit', ['extend.tier_limit']]);

    const ended = await post('end');
    assert.equal(ended.status, 200, await ended.clone().text());
    const body = (await ended.json()) as { state: string; score?: { total: number; max: number } };
    assert.equal(body.state, 'destroyed');
    assert.equal(body.score?.max, 1, 'graded before the lab was removed');
    assert.deepEqual(namespacesOf(fx.runtime, id), [], 'the devices are gone');
    const size = await t.ledger.ledger.size(t.tenantId, 'audit');
    const audit = (await t.ledger.ledger.entries(t.tenantId, 'audit', 0, size)).map((e) => e.record as { action: string; target?: string });
    assert.equal(audit.filter((a) => a.action === 'scenario.extended' && a.target === id).length, 1);
    assert.equal(audit.filter((a) => a.action === 'scenario.ended' && a.target === id).length, 1);
    // The results stay downloadable with the session after the lab is gone.
    const score = await fetch(`${baseUrl}/v1/access/${id}/results/score.json`, { headers: { cookie } });
    assert.equal(score.status, 200);
    assert.match(String(score.headers.get('content-disposition')), /attachment/);
    assert.equal(((await score.json()) as { scenario_id: string }).scenario_id, id);
    const afterEnd = await post('extend');
    assert.equal(afterEnd.status, 409, 'the ended lab refuses its routes');
    assert.equal(((await afterEnd.json()) as { reason: string }).reason, 'lab_ended');
  });

  it('frostgate receipts issue: over HTTP to the running server, and refusing a key without admin', async () => {
    const cli = await runCli([
      'receipts',
      'issue',
      '--track',
      'ccna',
      '--subject',
      learner,
      '--credits',
      '2',
      '--url',
      baseUrl,
      '--api-key',
      t.adminKey,
      '--json',
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    const issued = JSON.parse(cli.stdout) as Record<string, unknown>;
    assert.deepEqual([issued.track, issued.subject, issued.credits, issued.billing_mode], ['ccna', learner, 2, 'fake_charge']);
    const catalog = await t.app.inject({ url: `/v1/catalog?subject=${learner}`, headers: admin() });
    const ccna = (catalog.json().tracks as Array<{ track: string; templates: Array<{ allowed: boolean }> }>).find((tr) => tr.track === 'ccna')!;
    assert.equal(ccna.templates[0]!.allowed, true, 'the CLI receipt opens ccna');

    const denied = await runCli(['receipts', 'issue', '--track', 'ccna', '--subject', learner, '--url', baseUrl, '--api-key', spawnKey, '--json']);
    assert.equal(denied.code, 1);
    assert.equal((JSON.parse(denied.stderr) as { error: { code: string } }).error.code, 'forbidden');
    const usage = await runCli(['receipts', 'issue', '--track', 'ccnp', '--subject', learner]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--track must be one of netplus, ccna, cissp/);
  });

  it('frostgate receipts issue without --url writes to the database directly; BILLING_MODE=stripe refuses', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fg-receipts-cli-'));
    try {
      const env = { FG_DATA_DIR: dir, FG_ENV: 'dev' };
      assert.equal((await runCli(['tenants', 'create', 'acme'], env)).code, 0);
      const ok = await runCli(['receipts', 'issue', '--tenant', 'acme', '--track', 'cissp', '--subject', 'bob', '--json'], env);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual((({ track, subject, tier, credits }) => ({ track, subject, tier, credits }))(JSON.parse(ok.stdout) as Record<string, unknown>), {
        track: 'cissp',
        subject: 'bob',
        tier: 'pro',
        credits: 5,
      });
      const stripe = await runCli(['receipts', 'issue', '--tenant', 'acme', '--track', 'cissp', '--subject', 'bob', '--json'], {
        ...env,
        BILLING_MODE: 'stripe',
      });
      assert.equal(stripe.code, 1);
      assert.match(stripe.stderr, /needs BILLING_MODE=fake_charge/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
