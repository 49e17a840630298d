import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, parseConfig, startupProblems } from '../../../src/config/config.js';

const strong = (c: string) => c.repeat(40);
function safe(profile: 'staging' | 'prod'): Record<string, string> {
  return {
    FG_ENV: profile,
    FG_DB_URL: 'postgres://fg@db.internal:5432/fg',
    FG_REDIS_URL: 'redis://:s3cr3t-redis-password@redis.internal:6379',
    FG_LEDGER_KEY_PATH: '/etc/frostgate/ledger.pem',
    FG_TOKEN_KEY_PATH: '/etc/frostgate/token.pem',
    SIGNING_KEY_PATH: '/etc/frostgate/verdict.pem',
    FG_SESSION_SECRET: strong('a'),
    RECEIPT_HMAC_SECRET: strong('b'),
    ET_HMAC_SECRET: strong('c'),
    FG_VARIABLES_SECRET: strong('d'),
  };
}

describe('billing and spawn configuration', () => {
  it('BILLING_MODE=fake_charge is refused at startup in prod, accepted in staging, dev and test', () => {
    const prod = { ...safe('prod'), BILLING_MODE: 'fake_charge' };
    assert.ok(startupProblems(parseConfig(prod, '/srv')).some((p) => /BILLING_MODE=fake_charge .* never in prod/.test(p)));
    assert.throws(() => loadConfig(prod, '/srv'), ConfigError);
    assert.deepEqual(startupProblems(parseConfig({ ...safe('staging'), BILLING_MODE: 'fake_charge' }, '/srv')), []);
    assert.equal(loadConfig({ FG_ENV: 'dev' }, '/srv').config.forge.billingMode, 'fake_charge');
    assert.equal(loadConfig({ FG_ENV: 'test', BILLING_MODE: 'fake_charge' }, '/srv').config.forge.billingMode, 'fake_charge');
  });

  it('prod defaults to stripe and warns while the webhook secret is missing; an unknown mode is an error', () => {
    const report = parseConfig(safe('prod'), '/srv');
    assert.equal(report.config?.forge.billingMode, 'stripe');
    assert.ok(report.warnings.some((w) => /STRIPE_WEBHOOK_SECRET/.test(w)));
    assert.ok(startupProblems(parseConfig({ BILLING_MODE: 'free' }, '/srv')).some((p) => /BILLING_MODE="free" must be one of: fake_charge, stripe/.test(p)));
  });

  it('quota limits and the orchestrator URL are read, and a handoff URL needs its key', () => {
    const { config } = loadConfig({ FG_QUOTA_MAX_CONCURRENT_PER_SUBJECT: '3', FG_QUOTA_MAX_SPAWNS_PER_DAY: '7' }, '/srv');
    assert.deepEqual(config.forge.quota, { maxConcurrentPerSubject: 3, maxConcurrentPerTenant: 20, maxSpawnsPerDay: 7 });
    assert.ok(startupProblems(parseConfig({ FG_ORCHESTRATOR_URL: 'http://127.0.0.1:8083' }, '/srv')).some((p) => /FG_ORCHESTRATOR_API_KEY/.test(p)));
    assert.ok(startupProblems(parseConfig({ FG_QUOTA_MAX_SPAWNS_PER_DAY: '-1' }, '/srv')).some((p) => /FG_QUOTA_MAX_SPAWNS_PER_DAY/.test(p)));
  });
});
