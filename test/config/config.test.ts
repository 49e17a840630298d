import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, maskedConfig, parseConfig, startupProblems } from '../../src/config/config.js';
import { VARIABLES } from '../../src/config/variables.js';

const strong = (c: string) => c.repeat(40);
/** A production environment with nothing wrong; each test breaks one rule. */
function safeProd(profile: 'staging' | 'prod' = 'prod'): Record<string, string> {
  return {
    FG_ENV: profile,
    FG_DB_URL: 'postgres://fg@db.internal:5432/fg',
    FG_REDIS_URL: 'redis://:s3cr3t-redis-password@redis.internal:6379',
    FG_NATS_URL: 'nats://nats.internal:4222',
    FG_LEDGER_KEY_PATH: '/etc/frostgate/ledger.pem',
    FG_TOKEN_KEY_PATH: '/etc/frostgate/token.pem',
    SIGNING_KEY_PATH: '/etc/frostgate/verdict.pem',
    FG_SESSION_SECRET: strong('a'),
    RECEIPT_HMAC_SECRET: strong('b'),
    ET_HMAC_SECRET: strong('c'),
    FG_VARIABLES_SECRET: strong('d'),
  };
}

function refusals(env: Record<string, string>): string[] {
  return startupProblems(parseConfig(env, '/srv'));
}

describe('config', () => {
  it('defaults to an embedded dev platform on 127.0.0.1:8080 with ./data', () => {
    const { config } = loadConfig({}, '/srv/fg');
    assert.equal(config.env, 'dev');
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 8080);
    assert.equal(config.dataDir, '/srv/fg/data');
    assert.equal(config.db.url, undefined);
    assert.equal(config.rateLimit.backend, 'memory');
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.auth), 'config is frozen');
  });

  it('takes FG_HOST, FG_PORT, FG_DATA_DIR and the server URLs', () => {
    const { config } = loadConfig(
      {
        FG_HOST: '0.0.0.0',
        FG_PORT: '9999',
        FG_DATA_DIR: '/var/lib/fg',
        FG_DB_URL: 'postgres://x@h/db',
        FG_REDIS_URL: 'redis://:p@h:6379',
        FG_NATS_URL: 'nats://h:4222',
      },
      '/',
    );
    assert.deepEqual([config.host, config.port, config.portExplicit, config.dataDir], ['0.0.0.0', 9999, true, '/var/lib/fg']);
    assert.equal(config.rateLimit.backend, 'redis');
    assert.equal(config.nats.url, 'nats://h:4222');
  });

  it('a safe production environment starts', () => {
    assert.deepEqual(refusals(safeProd('prod')), []);
    assert.deepEqual(refusals(safeProd('staging')), []);
  });

  const rules: Array<[string, (env: Record<string, string>) => void, RegExp]> = [
    ['embedded DB', (e) => delete e.FG_DB_URL, /embedded database/],
    ['memory rate limiter', (e) => (e.FG_RL_BACKEND = 'memory'), /memory rate-limit backend/],
    ['auth disabled', (e) => (e.FG_AUTH_ENABLED = '0'), /FG_AUTH_ENABLED=0/],
    ['global API key', (e) => (e.FG_API_KEY = strong('k')), /FG_API_KEY/],
    ['dev auth bypass', (e) => (e.FG_DEV_AUTH_BYPASS = 'true'), /FG_DEV_AUTH_BYPASS/],
    ['egress dry-run', (e) => (e.FG_EGRESS_DRY_RUN = 'true'), /FG_EGRESS_DRY_RUN/],
    ['ephemeral ledger key', (e) => delete e.FG_LEDGER_KEY_PATH, /FG_LEDGER_KEY_PATH is missing/],
    ['ephemeral token key', (e) => delete e.FG_TOKEN_KEY_PATH, /FG_TOKEN_KEY_PATH is missing/],
    ['ephemeral verdict key', (e) => delete e.SIGNING_KEY_PATH, /SIGNING_KEY_PATH is missing/],
    ['missing secret', (e) => delete e.ET_HMAC_SECRET, /ET_HMAC_SECRET is missing/],
    ['placeholder change-me', (e) => (e.RECEIPT_HMAC_SECRET = 'change-me-please-this-is-long-enough-xxxx'), /RECEIPT_HMAC_SECRET is a placeholder/],
    ['placeholder changeme', (e) => (e.FG_SESSION_SECRET = 'changeme0123456789012345678901234567'), /FG_SESSION_SECRET is a placeholder/],
    ['placeholder forgeadmin123', (e) => (e.ET_HMAC_SECRET = 'forgeadmin123forgeadmin123forgeadmin123'), /ET_HMAC_SECRET is a placeholder/],
    ['short secret', (e) => (e.ET_HMAC_SECRET = 'x7Gq'.repeat(7)), /shorter than 32 bytes/],
    ['redis without password', (e) => (e.FG_REDIS_URL = 'redis://redis.internal:6379'), /Redis without a password/],
    ['unknown FG_ variable', (e) => (e.FG_AUTH_ENABLE = '0'), /unknown FG_\* variable\(s\): FG_AUTH_ENABLE/],
  ];

  for (const profile of ['staging', 'prod'] as const) {
    for (const [name, breakIt, expected] of rules) {
      it(`${profile} refuses: ${name}`, () => {
        const env = safeProd(profile);
        breakIt(env);
        const problems = refusals(env);
        assert.ok(
          problems.some((p) => expected.test(p)),
          `expected ${expected} in ${JSON.stringify(problems)}`,
        );
        assert.throws(() => loadConfig(env, '/srv'), ConfigError);
      });
    }
  }

  it('lists every problem at once', () => {
    const problems = refusals({ FG_ENV: 'prod', FG_API_KEY: 'x', FG_AUTH_ENABLED: '0' });
    for (const re of [
      /embedded database/,
      /memory rate-limit/,
      /FG_AUTH_ENABLED=0/,
      /FG_API_KEY/,
      /FG_LEDGER_KEY_PATH/,
      /FG_SESSION_SECRET is missing/,
      /RECEIPT_HMAC_SECRET is missing/,
    ]) {
      assert.ok(
        problems.some((p) => re.test(p)),
        `${re} missing from ${problems.length} problems`,
      );
    }
    try {
      loadConfig({ FG_ENV: 'prod' }, '/srv');
      assert.fail('prod with nothing set must not load');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.problems.length >= 8, `all problems reported, got ${err.problems.length}`);
    }
  });

  it('dev and test accept what production refuses, and report it', () => {
    for (const profile of ['dev', 'test']) {
      const env = { FG_ENV: profile, FG_API_KEY: 'k', FG_AUTH_ENABLED: '0', FG_EGRESS_DRY_RUN: 'true' };
      assert.deepEqual(refusals(env), []);
      assert.ok(parseConfig(env).productionProblems.length > 0);
    }
  });

  it('FG_DEV_AUTH_BYPASS is refused outside dev, even in test', () => {
    assert.deepEqual(refusals({ FG_ENV: 'dev', FG_DEV_AUTH_BYPASS: 'true' }), []);
    assert.ok(refusals({ FG_ENV: 'test', FG_DEV_AUTH_BYPASS: 'true' }).some((p) => /only with FG_ENV=dev/.test(p)));
  });

  it('refuses unparseable values in every profile, naming the variable', () => {
    const problems = refusals({ FG_PORT: 'eighty', FG_ENV: 'production', FG_AUTH_ENABLED: 'maybe', FG_DB_URL: 'mysql://x' });
    assert.ok(problems.some((p) => p.startsWith('FG_PORT=')));
    assert.ok(problems.some((p) => p.startsWith('FG_ENV=') && p.includes('dev, test, staging, prod')));
    assert.ok(problems.some((p) => p.startsWith('FG_AUTH_ENABLED=')));
    assert.ok(problems.some((p) => p.startsWith('FG_DB_URL must use postgres')));
  });

  it('reports unknown FG_* variables as a warning in dev', () => {
    const report = parseConfig({ FG_PORTT: '1' });
    assert.deepEqual(report.config?.unknownVariables, ['FG_PORTT']);
    assert.ok(report.warnings.some((w) => w.includes('FG_PORTT')));
  });

  it('fail-open without acknowledgment warns and stays closed', () => {
    const report = parseConfig({ FG_RL_FAIL_OPEN: 'true', FG_AUTH_DB_FAIL_OPEN: 'true' });
    assert.ok(report.warnings.some((w) => /FG_RL_FAIL_OPEN=true has no effect/.test(w)));
    assert.ok(report.warnings.some((w) => /FG_AUTH_DB_FAIL_OPEN=true has no effect/.test(w)));
  });

  it('masks secrets and URL passwords', () => {
    const { config } = loadConfig({ ...safeProd('prod') }, '/srv');
    const text = JSON.stringify(maskedConfig(config));
    assert.ok(!text.includes('s3cr3t-redis-password'));
    assert.ok(!text.includes(strong('a')));
    assert.ok(!text.includes(strong('d')), 'FG_VARIABLES_SECRET is masked');
    assert.ok(text.includes('****'));
  });

  it('every variable the code reads is documented with a description and a production rule', () => {
    for (const v of VARIABLES) {
      assert.ok(v.description.length > 10, `${v.name} needs a description`);
      assert.ok(v.production.length > 0, `${v.name} needs a production rule`);
    }
  });
});
