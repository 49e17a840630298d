import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseConfig, startupProblems } from '../../../src/config/config.js';
import { parseGroupMap, personFromClaims } from '../../../src/core/console/claims.js';
import { createConsoleModule } from '../../../src/core/console/module.js';
import type { Platform } from '../../../src/platform/platform.js';
import { runCli } from '../../helpers/cli.js';
import { call, send, CookieJar, startConsoleRig, type ConsoleRig } from './helpers.js';

const strong = (c: string) => c.repeat(40);
function safeProd(profile: 'staging' | 'prod' = 'prod'): Record<string, string> {
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
    FG_OIDC_ISSUER: 'https://idp.example.test/realms/ops',
    FG_OIDC_CLIENT_ID: 'frostgate',
    FG_OIDC_CLIENT_SECRET: strong('e'),
  };
}
const refusals = (env: Record<string, string>) => startupProblems(parseConfig(env, '/srv'));

/** Builds the console module of a role in this configuration (it refuses before touching anything else). */
function consoleFor(env: Record<string, string>) {
  const report = parseConfig(env, '/srv');
  assert.ok(report.config);
  return createConsoleModule({ config: report.config } as unknown as Platform);
}

describe('console sign-in configuration is checked at startup', () => {
  it('a production environment with an https issuer starts', () => {
    assert.deepEqual(refusals(safeProd('prod')), []);
    assert.deepEqual(refusals(safeProd('staging')), []);
  });

  it('staging and prod refuse http:// issuers and redirect URLs; dev accepts a local http IdP', () => {
    for (const profile of ['staging', 'prod'] as const) {
      assert.ok(refusals({ ...safeProd(profile), FG_OIDC_ISSUER: 'http://idp.internal' }).some((p) => /FG_OIDC_ISSUER must use https/.test(p)));
      assert.ok(
        refusals({ ...safeProd(profile), FG_OIDC_REDIRECT_URL: 'http://fg.example/auth/callback' }).some((p) => /FG_OIDC_REDIRECT_URL must use https/.test(p)),
      );
    }
    assert.deepEqual(refusals({ FG_ENV: 'dev', FG_OIDC_ISSUER: 'http://127.0.0.1:9000', FG_OIDC_CLIENT_ID: 'c', FG_OIDC_CLIENT_SECRET: 's' }), []);
  });

  it('an issuer needs its client id and secret', () => {
    const { FG_OIDC_CLIENT_SECRET: _omitted, ...env } = safeProd();
    assert.ok(refusals(env).some((p) => /FG_OIDC_ISSUER needs FG_OIDC_CLIENT_ID and FG_OIDC_CLIENT_SECRET/.test(p)));
  });

  it('staging and prod refuse to serve the console without an issuer', () => {
    const { FG_OIDC_ISSUER: _i, FG_OIDC_CLIENT_ID: _c, FG_OIDC_CLIENT_SECRET: _s, ...env } = safeProd('prod');
    assert.throws(
      () => consoleFor(env),
      (err: unknown) => err instanceof ConfigError && /needs an OpenID Connect provider: set FG_OIDC_ISSUER/.test(err.message),
    );
    assert.throws(() => consoleFor({ ...env, FG_ENV: 'staging' }), ConfigError);
  });

  it('the embedded provider is refused outside dev and test, and is the default there without an issuer', () => {
    for (const profile of ['staging', 'prod'] as const) {
      assert.ok(refusals({ ...safeProd(profile), FG_OIDC_EMBEDDED: 'true' }).some((p) => /embedded OpenID provider .* only in dev and test/.test(p)));
    }
    assert.equal(parseConfig({ FG_ENV: 'dev' }).config!.console.embeddedIdp, true);
    assert.equal(parseConfig({ FG_ENV: 'test' }).config!.console.embeddedIdp, true);
    assert.equal(
      parseConfig({ FG_ENV: 'dev', FG_OIDC_ISSUER: 'https://idp', FG_OIDC_CLIENT_ID: 'c', FG_OIDC_CLIENT_SECRET: 's' }).config!.console.embeddedIdp,
      false,
    );
    assert.equal(parseConfig(safeProd()).config!.console.embeddedIdp, false);
  });

  it('staging and prod refuse to start with FG_DEV_AUTH_BYPASS (frostgate serve exits, naming it)', async () => {
    for (const profile of ['staging', 'prod'] as const) {
      assert.ok(refusals({ ...safeProd(profile), FG_DEV_AUTH_BYPASS: 'true' }).some((p) => /FG_DEV_AUTH_BYPASS/.test(p)));
    }
    const res = await runCli(['serve'], { ...safeProd('staging'), FG_DEV_AUTH_BYPASS: 'true' });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /FG_DEV_AUTH_BYPASS/);
  });

  it('an unreadable group map stops the console in every profile', () => {
    for (const map of ['admins', 'admins=default', 'admins=default:no-such-scope', 'admins=UPPER:admin', ';']) {
      assert.throws(() => consoleFor({ FG_ENV: 'dev', FG_OIDC_GROUP_MAP: map }), ConfigError, map);
    }
  });
});

describe('claims map to a tenant and scopes through FG_OIDC_GROUP_MAP', () => {
  const grants = parseGroupMap('sec-admins=acme:admin; sec-ops=acme:decisions:read,governance:write; soc=acme:governance:approve; other=globex:admin');

  it('a person in mapped groups acts for that tenant with the union of their scopes; the identity is the IdP subject', () => {
    const person = personFromClaims({ sub: 'u-17', name: 'Ada', email: 'ada@acme.test', groups: ['sec-ops', 'soc', 'unrelated'] }, 'groups', grants);
    assert.deepEqual(person, {
      tenantId: 'acme',
      subject: 'oidc:u-17',
      name: 'Ada',
      email: 'ada@acme.test',
      scopes: ['decisions:read', 'governance:approve', 'governance:write'],
    });
  });

  it('a single-string claim, and another claim name (roles), work', () => {
    const person = personFromClaims({ sub: 'u-1', roles: 'sec-admins' }, 'roles', grants);
    assert.ok(!('reason' in person));
    assert.deepEqual(person.scopes, ['admin']);
  });

  it('no mapped group, groups of two tenants, or no subject: no session', () => {
    assert.equal((personFromClaims({ sub: 'u', groups: ['unrelated'] }, 'groups', grants) as { reason: string }).reason, 'no_mapped_group');
    assert.equal((personFromClaims({ sub: 'u', groups: ['sec-admins', 'other'] }, 'groups', grants) as { reason: string }).reason, 'several_tenants');
    assert.equal((personFromClaims({ groups: ['sec-admins'] }, 'groups', grants) as { reason: string }).reason, 'no_subject');
  });
});

describe('FG_DEV_AUTH_BYPASS in dev', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig({ env: { FG_ENV: 'dev', FG_DEV_AUTH_BYPASS: 'true', FG_DATA_DIR: '/nonexistent-test-data' } });
  });
  after(async () => rig?.close());

  it('signs in at /login without the IdP, as the bypass identity, logged as such', async () => {
    const jar = new CookieJar();
    const res = await send(jar, `${rig.baseUrl}/login`);
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/console');
    const me = await call(rig, jar, 'GET', '/console/session');
    assert.equal(me.json.subject, 'dev:bypass');
    assert.ok(rig.logs.lines.some((l) => l.reason === 'dev_auth_bypass'));
  });
});
