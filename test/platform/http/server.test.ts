import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { createAuthModule } from '../../../src/core/auth/module.js';
import { ensureBootstrapAdmin } from '../../../src/core/auth/bootstrap.js';
import { AppError } from '../../../src/platform/http/problem.js';
import { buildServer, type App } from '../../../src/platform/http/server.js';
import { createPlatform, type Platform } from '../../../src/platform/platform.js';
import { LogCapture, testConfig } from '../../helpers/app.js';

describe('HTTP platform', () => {
  let platform: Platform;
  let app: App;
  let key: string;
  const logs = new LogCapture();

  before(async () => {
    platform = await createPlatform(testConfig({ FG_LOG_LEVEL: 'info', FG_BODY_LIMIT: '2048' }), { embeddedDir: 'memory', logDestination: logs });
    const auth = createAuthModule(platform);
    app = await buildServer(platform, {
      role: 'test',
      version: '0.0.0-test',
      gate: auth.gate,
      plugins: [
        auth.routes,
        {
          name: 'probe',
          plugin: async (a) => {
            a.post(
              '/probe/echo',
              { schema: { body: Type.Object({ n: Type.Integer({ minimum: 0 }), s: Type.Optional(Type.String()) }, { additionalProperties: false }) } },
              async (req) => {
                req.log.info({ probe: true }, 'inside handler');
                return req.body;
              },
            );
            a.get('/probe/conflict', async () => {
              throw new AppError('conflict', 'already there');
            });
            a.get('/probe/unprocessable', async () => {
              throw new AppError('unprocessable', 'track "x" is not one of netplus, ccna, cissp');
            });
            a.get('/probe/limited', async () => {
              throw new AppError('rate_limited', 'slow down', {}, { 'retry-after': '3' });
            });
            a.get('/probe/unavailable', async () => {
              throw new AppError('unavailable', 'redis is down');
            });
            a.get('/probe/crash', async () => {
              throw new Error('secret internal detail at /srv/app.ts:12');
            });
          },
        },
      ],
    });
    key = (await ensureBootstrapAdmin(platform.db, 'default')).key!;
  });
  after(async () => {
    await app?.close();
    await platform?.close();
  });

  const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers: { 'x-api-key': key, ...headers } });

  function assertProblem(res: Awaited<ReturnType<App['inject']>>, status: number, code: string) {
    assert.equal(res.statusCode, status, res.body);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    const body = res.json<Record<string, unknown>>();
    assert.equal(body.status, status);
    assert.equal(body.code, code);
    assert.equal(body.type, `https://frostgate.dev/problems/${code}`);
    assert.equal(typeof body.detail, 'string');
    assert.ok((body.detail as string).length > 0);
    assert.equal(body.request_id, res.headers['x-request-id']);
    assert.ok(!res.body.includes('at ') || !res.body.includes('.ts:'), 'no stack traces');
    return body;
  }

  it('answers every error status as problem+json with type, detail and request_id', async () => {
    assertProblem(
      await app.inject({ method: 'POST', url: '/probe/echo', headers: { 'x-api-key': key, 'content-type': 'application/json' }, payload: '{"n": -1}' }),
      400,
      'validation_failed',
    );
    assertProblem(
      await app.inject({ method: 'POST', url: '/probe/echo', headers: { 'x-api-key': key, 'content-type': 'application/json' }, payload: '{"n": 1,' }),
      400,
      'malformed_json',
    );
    assertProblem(await app.inject({ method: 'GET', url: '/probe/conflict' }), 401, 'unauthorized');
    assertProblem(
      await app.inject({ method: 'GET', url: '/probe/conflict', headers: { 'x-api-key': key, 'x-tenant-id': 'someone-else' } }),
      403,
      'tenant_mismatch',
    );
    assertProblem(await get('/nowhere'), 404, 'not_found');
    const m = assertProblem(await app.inject({ method: 'DELETE', url: '/probe/conflict', headers: { 'x-api-key': key } }), 405, 'method_not_allowed');
    assert.match(String(m.detail), /allowed: GET/);
    assertProblem(await get('/probe/conflict'), 409, 'conflict');
    assertProblem(
      await app.inject({
        method: 'POST',
        url: '/probe/echo',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        payload: JSON.stringify({ n: 1, s: 'x'.repeat(4096) }),
      }),
      413,
      'payload_too_large',
    );
    assertProblem(
      await app.inject({ method: 'POST', url: '/probe/echo', headers: { 'x-api-key': key, 'content-type': 'text/plain' }, payload: 'n=1' }),
      415,
      'unsupported_media_type',
    );
    assertProblem(await get('/probe/unprocessable'), 422, 'unprocessable');
    const limited = await get('/probe/limited');
    assertProblem(limited, 429, 'rate_limited');
    assert.equal(limited.headers['retry-after'], '3');
    assertProblem(await get('/probe/unavailable'), 503, 'unavailable');
    const crash = assertProblem(await get('/probe/crash'), 500, 'internal');
    assert.ok(!String(crash.detail).includes('secret internal detail'), 'internal error text is not leaked');
  });

  it('names the failing field of a schema violation', async () => {
    const res = await app.inject({ method: 'POST', url: '/probe/echo', headers: { 'x-api-key': key }, payload: { n: 'seven' } });
    const body = assertProblem(res, 400, 'validation_failed');
    assert.match(String(body.detail), /^body\/n /);
    const extra = assertProblem(
      await app.inject({ method: 'POST', url: '/probe/echo', headers: { 'x-api-key': key }, payload: { n: 1, evil: true } }),
      400,
      'validation_failed',
    );
    assert.match(String(extra.detail), /body\/evil is not an allowed field/);
  });

  it('accepts a safe x-request-id, replaces an unsafe one, and echoes it', async () => {
    const ok = await get('/health/detailed', { 'x-request-id': 'trace-123.abc:9' });
    assert.equal(ok.headers['x-request-id'], 'trace-123.abc:9');
    const bad = await get('/health/detailed', { 'x-request-id': 'evil\u0000id with spaces' });
    assert.match(String(bad.headers['x-request-id']), /^req_[A-Za-z0-9_-]{16}$/);
    const long = await get('/health/detailed', { 'x-request-id': 'a'.repeat(129) });
    assert.notEqual(long.headers['x-request-id'], 'a'.repeat(129));
    const none = await get('/health/detailed');
    assert.match(String(none.headers['x-request-id']), /^req_/);
  });

  it('sets security headers on every answer', async () => {
    for (const res of [await get('/health/live'), await get('/nowhere')]) {
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
      assert.equal(res.headers['cache-control'], 'no-store');
    }
  });

  it('serves an OpenAPI document generated from the route schemas', async () => {
    const res = await get('/openapi.json');
    assert.equal(res.statusCode, 200);
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> }>();
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/keys']?.post?.requestBody, 'POST /keys documents its body');
    assert.ok(doc.paths['/health/ready']);
  });

  it('every log line of a request carries request_id, and tenant_id once bound', async () => {
    const before = logs.lines.length;
    const res = await app.inject({ method: 'POST', url: '/probe/echo', headers: { 'x-api-key': key, 'x-request-id': 'log-probe-1' }, payload: { n: 1 } });
    assert.equal(res.statusCode, 200);
    const lines = logs.lines.slice(before).filter((l) => l.request_id === 'log-probe-1' || l.msg === 'inside handler' || l.msg === 'request completed');
    const handler = lines.find((l) => l.msg === 'inside handler');
    const completed = lines.find((l) => l.msg === 'request completed');
    assert.ok(handler && completed, 'both lines captured');
    for (const line of [handler, completed]) {
      assert.equal(line.request_id, 'log-probe-1');
      assert.equal(line.tenant_id, 'default');
    }
    assert.ok(!JSON.stringify(logs.lines).includes(key), 'the key never reaches a log line');
  });

  it('exports Prometheus metrics with an HTTP duration histogram by route and status', async () => {
    await get('/health/live');
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/plain/);
    assert.match(res.body, /http_request_duration_seconds_bucket\{[^}]*route="\/health\/live"[^}]*status="200"/);
    assert.match(res.body, /process_cpu_user_seconds_total/);
    assert.match(res.body, /auth_success_total \d+/);
  });
});
