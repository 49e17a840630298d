import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { openDatabase, type Database } from '../../../src/platform/db/database.js';
import { DatabaseReplayGuard, RedisReplayGuard, type ReplayGuard } from '../../../src/forge/tokens/replay.js';
import { loadTokenSigningKey } from '../../../src/forge/tokens/signing-key.js';
import { ScenarioTokens, TokenRefusedError } from '../../../src/forge/tokens/scenario-tokens.js';
import { issueEntitlement, signReceipt, verifyEntitlement, verifyReceipt, ReceiptError, type Receipt } from '../../../src/forge/spawn/receipts.js';
import { stripeSignatureHeader, verifyStripeSignature, StripeSignatureError } from '../../../src/forge/spawn/stripe.js';

const claims = { tenant: 'acme', subject: 'learner-1', scenarioId: 'scn_abc', track: 'netplus' };

async function refused(p: Promise<unknown>, problem: string) {
  await assert.rejects(p, (err: unknown) => err instanceof TokenRefusedError && err.problem === problem);
}

describe('scenario tokens', () => {
  let db: Database;
  let redis: Redis;
  before(async () => {
    db = await openDatabase({ embeddedDir: 'memory', migrate: true });
    redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: false });
  });
  after(async () => {
    await db?.close();
    redis?.disconnect();
  });

  const guards: Array<[string, () => ReplayGuard]> = [
    ['database', () => new DatabaseReplayGuard(db)],
    ['redis', () => new RedisReplayGuard(redis, `fgtest:jti:${randomBytes(4).toString('hex')}:`)],
  ];
  for (const [name, guard] of guards) {
    it(`issues SAT and access tokens that verify once, bound to scenario and audience (${name} replay store)`, async () => {
      const key = await loadTokenSigningKey({ keyPath: undefined, dataDir: undefined });
      const tokens = new ScenarioTokens(key, guard());
      const sat = await tokens.issue('sat', claims);
      const access = await tokens.issue('access', claims);
      assert.ok(access.expiresAt.getTime() - Date.now() > 29 * 60_000, 'access tokens live 30 minutes');
      assert.ok(sat.expiresAt.getTime() - Date.now() <= 300_000, 'SATs are short-lived');
      const v = await tokens.verify('access', access.token, { scenarioId: 'scn_abc', once: true });
      assert.equal(v.subject, 'learner-1');
      await refused(tokens.verify('access', access.token, { scenarioId: 'scn_abc', once: true }), 'replayed');
      await refused(tokens.verify('sat', access.token), 'wrong_audience');
      await refused(tokens.verify('sat', sat.token, { scenarioId: 'scn_other' }), 'wrong_scenario');
      const other = new ScenarioTokens(await loadTokenSigningKey({ keyPath: undefined, dataDir: undefined }), guard());
      await refused(other.verify('sat', sat.token), 'bad_signature');
      await refused(tokens.verify('sat', 'not.a.token'), 'malformed');
      const tampered = sat.token.slice(0, -3) + (sat.token.endsWith('A') ? 'BBB' : 'AAA');
      await assert.rejects(tokens.verify('sat', tampered), TokenRefusedError);
    });
  }

  it('refuses an expired token with its own reason', async () => {
    let now = Date.now();
    const tokens = new ScenarioTokens(await loadTokenSigningKey({ keyPath: undefined, dataDir: undefined }), new DatabaseReplayGuard(db), () => now);
    const t = await tokens.issue('access', claims, 60);
    now += 61_000;
    await refused(tokens.verify('access', t.token), 'expired');
  });
});

describe('receipts and entitlements', () => {
  const secret = randomBytes(32).toString('base64');
  const receipt: Receipt = {
    receipt_id: 'rcp_1',
    tenant: 'acme',
    subject: 'learner-1',
    track: 'ccna',
    tier: 'pro',
    credits: 3,
    expires_at: Math.floor(Date.now() / 1000) + 3600,
  };

  it('a signed receipt verifies and becomes an entitlement token with track, tier, credits and expiry', async () => {
    const r = verifyReceipt(signReceipt(receipt, secret), secret);
    assert.deepEqual(r, receipt);
    const etSecret = randomBytes(32).toString('base64');
    const et = await verifyEntitlement(await issueEntitlement(r, etSecret), etSecret);
    assert.deepEqual([et.track, et.tier, et.credits, et.subject, et.expires_at], ['ccna', 'pro', 3, 'learner-1', receipt.expires_at]);
    await assert.rejects(verifyEntitlement(await issueEntitlement(r, etSecret), randomBytes(32).toString('base64')), /does not verify/);
  });

  it('refuses a bad receipt signature, a changed payload, an expired receipt', () => {
    const signed = signReceipt(receipt, secret);
    assert.throws(() => verifyReceipt(signed, randomBytes(32).toString('base64')), ReceiptError);
    const [body, mac] = signed.split('.');
    const forged = Buffer.from(JSON.stringify({ ...receipt, credits: 999 })).toString('base64url');
    assert.throws(() => verifyReceipt(`${forged}.${mac}`, secret), /signature does not verify/);
    assert.throws(() => verifyReceipt(signReceipt({ ...receipt, expires_at: 1 }, secret), secret), /expired/);
    assert.throws(() => verifyReceipt(`${body}`, secret), /payload/);
  });
});

describe('Stripe webhook signatures', () => {
  const secret = `whsec_${randomBytes(24).toString('hex')}`;
  const payload = JSON.stringify({ id: 'evt_1', type: 'checkout.session.completed', data: { object: { id: 'cs_1' } } });
  const now = Math.floor(Date.now() / 1000);

  it('accepts the signature Stripe computes and rejects any change, other secrets and stale timestamps', () => {
    verifyStripeSignature(payload, stripeSignatureHeader(payload, secret, now), secret, now);
    verifyStripeSignature(
      payload,
      `${stripeSignatureHeader(payload, 'whsec_old', now)},v1=${stripeSignatureHeader(payload, secret, now).split('v1=')[1]}`,
      secret,
      now,
    );
    assert.throws(() => verifyStripeSignature(payload.replace('cs_1', 'cs_2'), stripeSignatureHeader(payload, secret, now), secret, now), StripeSignatureError);
    assert.throws(() => verifyStripeSignature(payload, stripeSignatureHeader(payload, 'whsec_other', now), secret, now), /no v1 signature/);
    assert.throws(() => verifyStripeSignature(payload, stripeSignatureHeader(payload, secret, now - 600), secret, now), /tolerance/);
    assert.throws(() => verifyStripeSignature(payload, undefined, secret, now), /missing/);
    assert.throws(() => verifyStripeSignature(payload, 'garbage', secret, now), /lacks/);
  });
});
