import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from '../../src/cli/command.js';
import { COMMANDS } from '../../src/cli/main.js';
import { createAuthGate } from '../../src/core/auth/gate.js';
import type { RateLimitPolicy } from '../../src/core/ratelimit/policy.js';
import { buildServer } from '../../src/platform/http/server.js';
import { unknownKey } from '../chaos/harness.js';
import { startTestApp, testConfig, type TestApp } from '../helpers/app.js';
import { ROOT } from '../helpers/cli.js';
import { startThrowawayRedis, type ThrowawayServer } from '../helpers/servers.js';
import { probePath, probeRoutes, startAuthNode, type AuthNode } from '../core/auth/helpers.js';

/**
 * The runbooks (docs/runbooks) must not rot: every metric, label value, log line, `frostgate`
 * command and curl route they cite is checked against the code here. Metrics are read from the
 * live /metrics of test platforms on which the incidents the runbooks describe were provoked, so
 * a cited label value exists only if the code really exports it.
 */

const DIR = path.join(ROOT, 'docs/runbooks');
const pages = readdirSync(DIR)
  .filter((f) => f.endsWith('.md'))
  .sort();
const text = new Map(pages.map((p) => [p, readFileSync(path.join(DIR, p), 'utf8')]));

/** Fenced code blocks and the prose outside them (inline code spans are taken from the prose). */
function split(markdown: string): { code: string[]; prose: string } {
  const code: string[] = [];
  const prose = markdown.replace(/^[ \t]*```[^\n]*\n([\s\S]*?)^[ \t]*```[ \t]*$/gm, (_m, body: string) => {
    code.push(body);
    return '';
  });
  return { code, prose };
}

/** Inline code spans, with line breaks inside a span folded to spaces. */
function spans(prose: string): string[] {
  return [...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s*\n\s*/g, ' '));
}

interface Cited {
  readonly page: string;
  readonly what: string;
}

// ---------------------------------------------------------------------------------------------
// Metrics: `name`, `name{label}` or `name{label="value",...}`, and metric names in code blocks.

const METRIC_SPAN = /^([a-z_][a-z0-9_]*)(?:\{([^}]*)\})?$/;
const METRIC_WORD = /\b([a-z][a-z0-9_]*_(?:total|seconds|seconds_count|seconds_sum|seconds_bucket))\b/g;

interface MetricCitation extends Cited {
  readonly name: string;
  readonly labels: ReadonlyArray<{ name: string; value?: string }>;
}

function metricCitations(): MetricCitation[] {
  const out: MetricCitation[] = [];
  for (const [page, md] of text) {
    const { code, prose } = split(md);
    for (const span of spans(prose)) {
      const m = METRIC_SPAN.exec(span);
      if (!m) continue;
      const [, name, labelText] = m;
      if (labelText === undefined && !/_(total|seconds|count|sum|bucket)$/.test(name!)) continue;
      const labels = (labelText ?? '')
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean)
        .map((l) => {
          const lm = /^([a-z_][a-z0-9_]*)(?:="([^"]*)")?$/.exec(l);
          assert.ok(lm, `${page}: cannot read the label matcher ${l} in \`${span}\``);
          return lm[2] === undefined ? { name: lm[1]! } : { name: lm[1]!, value: lm[2] };
        });
      out.push({ page, what: span, name: name!, labels });
    }
    for (const block of code) for (const m of block.matchAll(METRIC_WORD)) out.push({ page, what: m[1]!, name: m[1]!, labels: [] });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Log lines: `"msg":"..."`, `"reason":"..."`, `"type":"..."`, `"component":"..."`.

const LOG_SPAN = /^"(msg|reason|type|component|logger)":"(.+)"$/;

function logCitations(): Array<Cited & { field: string; value: string }> {
  const out: Array<Cited & { field: string; value: string }> = [];
  for (const [page, md] of text) {
    for (const span of spans(split(md).prose)) {
      const m = LOG_SPAN.exec(span);
      if (m) out.push({ page, what: span, field: m[1]!, value: m[2]! });
    }
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}
const SOURCE = sourceFiles(path.join(ROOT, 'src'))
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');

// ---------------------------------------------------------------------------------------------
// Commands: lines of code blocks and inline spans that run `frostgate` or `curl`.

/** A shell line split into words: quotes removed, stops at a pipe, redirection, `;`, `&&` or comment. */
function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let started = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else cur += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      started = true;
      continue;
    }
    if (c === '$' && line[i + 1] === '(') {
      // Command substitution: kept as one opaque word part.
      let depth = 0;
      let j = i;
      for (; j < line.length; j++) {
        if (line[j] === '(') depth++;
        else if (line[j] === ')' && --depth === 0) break;
      }
      cur += line.slice(i, j + 1);
      started = true;
      i = j;
      continue;
    }
    if (/\s/.test(c)) {
      if (started) out.push(cur);
      cur = '';
      started = false;
      continue;
    }
    if (c === '|' || c === '>' || c === ';' || c === '#' || (c === '&' && line[i + 1] === '&')) break;
    cur += c;
    started = true;
  }
  if (started) out.push(cur);
  return out;
}

/** Logical lines of a code block (backslash continuations joined). */
function shellLines(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/^\s*\$\s+/, '').trim())
    .filter(Boolean);
}

function commandLines(): Array<Cited & { argv: string[] }> {
  const out: Array<Cited & { argv: string[] }> = [];
  for (const [page, md] of text) {
    const { code, prose } = split(md);
    const lines = [...code.flatMap(shellLines), ...spans(prose).filter((s) => /^(frostgate|curl) /.test(s))];
    for (const line of lines) {
      let argv = words(line);
      while (argv.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(argv[0]!)) argv = argv.slice(1); // VAR=value prefixes
      if (argv[0] === 'npx') argv = argv.slice(1);
      if (argv[0] === 'frostgate' || argv[0] === 'curl') out.push({ page, what: line, argv });
    }
  }
  return out;
}

/** The literal subcommands a command's usage lines show (`keys create`), and whether a form has none. */
function usageForms(help: string, name: string): { subs: Set<string>; bare: boolean } {
  const subs = new Set<string>();
  let bare = false;
  for (const line of help.split('\n')) {
    const m = new RegExp(`^\\s*(?:Usage:\\s*)?frostgate ${name}(?:\\s+(\\S+))?`).exec(line);
    if (!m) continue;
    if (m[1] && /^[a-z][a-z-]*$/.test(m[1])) subs.add(m[1]);
    else bare = true;
  }
  return { subs, bare };
}

// ---------------------------------------------------------------------------------------------

describe('runbooks', () => {
  it('every incident type of the seed has a page with Signals, Confirm and Fix, and the index links each page', () => {
    const expected = [
      'auth-failure-spike.md',
      'rate-limit-store-down.md',
      'tenant-mismatch.md',
      'ledger-verification-failure.md',
      'signing-key-rotation.md',
      'lab-leak.md',
      'spawn-failures.md',
      'ledger-checkpoint-lag.md',
      'readiness-flapping.md',
      'ingest-backlog.md',
    ];
    assert.deepEqual(pages.filter((p) => p !== 'README.md').sort(), [...expected].sort());
    for (const page of expected) {
      const headings = [...text.get(page)!.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);
      for (const section of ['Signals', 'Confirm', 'Fix'])
        assert.ok(
          headings.some((h) => h === section || h.startsWith(`${section}:`)),
          `${page} has no "## ${section}" section`,
        );
    }
    const index = text.get('README.md')!;
    for (const page of expected) assert.match(index, new RegExp(`\\]\\(${page.replace('.', '\\.')}\\)`), `README.md links ${page}`);
    // Relative links between pages point at pages that exist.
    for (const [page, md] of text) {
      for (const m of md.matchAll(/\]\(([^)#]+\.md)\)/g)) assert.ok(pages.includes(m[1]!), `${page} links ${m[1]} which does not exist`);
    }
  });

  it('every log line and field value cited is one the code writes', () => {
    const cited = logCitations();
    assert.ok(cited.length >= 20, `only ${cited.length} log citations found: the parser lost them`);
    const missing = cited.filter((c) => !SOURCE.includes(`'${c.value}'`) && !SOURCE.includes(`"${c.value}"`) && !SOURCE.includes(`\`${c.value}\``));
    assert.deepEqual(
      missing.map((c) => `${c.page}: ${c.what}`),
      [],
    );
  });

  it('every frostgate command cited exists and parses with its options; every curl path is a route', async () => {
    const cited = commandLines();
    const cli = cited.filter((c) => c.argv[0] === 'frostgate');
    assert.ok(cli.length >= 15, `only ${cli.length} frostgate commands found: the parser lost them`);
    const problems: string[] = [];
    for (const c of cli) {
      const [, name, ...rest] = c.argv;
      const entry = COMMANDS.find((e) => e.name === name);
      if (!entry) {
        problems.push(`${c.page}: \`${c.what}\`: no command ${JSON.stringify(name)}`);
        continue;
      }
      const command = await entry.load();
      let parsed;
      try {
        parsed = parse(command, rest);
      } catch (err) {
        problems.push(`${c.page}: \`${c.what}\`: ${(err as Error).message.split('\n')[0]}`);
        continue;
      }
      const { subs, bare } = usageForms(command.help, command.name);
      const first = parsed.positionals[0];
      if (subs.size > 0 && first !== undefined && !subs.has(first))
        problems.push(`${c.page}: \`${c.what}\`: ${name} has no subcommand ${first} (${[...subs].join(', ')})`);
      if (subs.size > 0 && first === undefined && !bare) problems.push(`${c.page}: \`${c.what}\`: ${name} needs a subcommand (${[...subs].join(', ')})`);
      for (const p of parsed.positionals) if (/^<|^\.\.\.$/.test(p)) problems.push(`${c.page}: \`${c.what}\`: placeholder ${p} cannot be run`);
    }

    const t = await startTestApp();
    try {
      const curls = cited.filter((c) => c.argv[0] === 'curl');
      assert.ok(curls.length >= 10, `only ${curls.length} curl calls found: the parser lost them`);
      for (const c of curls) {
        const url = c.argv.find((w) => w.startsWith('$FG') || w.startsWith('http'));
        if (!url) {
          problems.push(`${c.page}: \`${c.what}\`: no $FG URL`);
          continue;
        }
        const xi = c.argv.indexOf('-X');
        const method = xi >= 0 ? c.argv[xi + 1]! : c.argv.some((w) => w === '-d' || w === '--data') ? 'POST' : 'GET';
        const pathOnly = url
          .replace(/^\$FG|^https?:\/\/[^/]+/, '')
          .split('?')[0]!
          .replace(/\$\([^)]*\)|\$\{?[A-Za-z_]+\}?/g, 'x');
        const res = await t.app.inject({ method: method as 'GET', url: pathOnly });
        const unrouted = res.statusCode === 405 || (res.statusCode === 404 && /^no route/.test(res.json<{ detail?: string }>().detail ?? ''));
        if (unrouted) problems.push(`${c.page}: \`${c.what}\`: ${method} ${pathOnly} is no route (${res.statusCode})`);
      }
    } finally {
      await t.close();
    }
    assert.deepEqual(problems, []);
  });

  describe('every metric and label value cited is exported, once its incident happened', () => {
    let redis: ThrowawayServer | undefined;
    let closed: TestApp | undefined;
    let open: TestApp | undefined;
    let node: AuthNode | undefined;
    let exported = '';
    /** Label names of every metric the platform registers, by metric name. */
    const metrics = new Map<string, readonly string[]>();

    const policy = (): RateLimitPolicy => {
      const roomy = { per_key: { points: 1000, duration_s: 60 }, per_tenant: { points: 5000, duration_s: 60 } };
      return {
        version: `runbooks-${randomBytes(4).toString('hex')}`,
        classes: { read: { ...roomy, per_key: { points: 2, duration_s: 60 } }, write: roomy, admin: roomy },
        invalid_keys: { points: 4, duration_s: 60, block_s: 60 },
      };
    };

    before(async () => {
      redis = await startThrowawayRedis('runbooks-redis-password-0123456789ab');
      // A platform that fails closed on Redis, on which every auth and rate-limit incident is provoked.
      closed = await startTestApp({ env: { FG_REDIS_URL: redis.url } });
      const t = closed;
      t.limiter.apply(policy());
      const get = (url: string, key?: string, headers: Record<string, string> = {}, remoteAddress = '198.51.100.20') =>
        t.app.inject({ url, headers: { ...(key ? { 'x-api-key': key } : {}), ...headers }, remoteAddress });
      const reader = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'] })).key;
      const revoked = await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'] });
      await t.auth.store.revokeKey(t.tenantId, revoked.id);
      const expired = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['decisions:read'], expiresAt: new Date(Date.now() - 60_000) })).key;
      const expect = async (res: Promise<{ statusCode: number }>, status: number, what: string) => assert.equal((await res).statusCode, status, what);
      await expect(get('/keys'), 401, 'missing');
      await expect(get('/keys', 'fg_not-a-key'), 401, 'malformed');
      await expect(get('/keys', unknownKey(), {}, '198.51.100.21'), 401, 'unknown');
      await expect(get('/keys', revoked.key, {}, '198.51.100.22'), 401, 'revoked');
      await expect(get('/keys', expired, {}, '198.51.100.23'), 401, 'expired');
      await expect(get('/keys', reader), 403, 'missing_scope');
      await expect(get('/keys?api_key=x'), 400, 'key_in_query');
      await expect(get('/decisions', reader, { 'x-tenant-id': 'beta' }), 403, 'tenant_mismatch');
      await expect(get('/decisions', reader), 200, 'allowed');
      await expect(get('/decisions', reader), 200, 'allowed');
      await expect(get('/decisions', reader), 429, 'limited');
      for (let i = 0; i < 4; i++) await get('/keys', unknownKey(), {}, '198.51.100.30');
      await expect(get('/keys', unknownKey(), {}, '198.51.100.30'), 429, 'invalid_key_blocked');
      // Redis goes away: the first platform fails closed, the second (acknowledged fail-open
      // switch, on the same Redis) lets the request through.
      open = await startTestApp({ env: { FG_REDIS_URL: redis.url, FG_RL_FAIL_OPEN: 'true', FG_RL_FAIL_OPEN_ACKNOWLEDGED: 'true' } });
      await redis.stop();
      await expect(get('/keys', t.adminKey), 503, 'rate limit store unavailable');
      await expect(open.app.inject({ url: '/keys', headers: { 'x-api-key': open.adminKey } }), 200, 'rate limit fail open');

      // The key store unreadable: refused (store_unavailable), and with the acknowledged auth
      // fail-open switch a key seen before passes (a cache TTL of 0 makes every request ask).
      node = await startAuthNode({ keyCacheTtlMs: 0 });
      const seen = await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] });
      const probe = probePath('decisions:read');
      await expect(node.app.inject({ url: probe, headers: { 'x-api-key': seen.key } }), 200, 'seen once');
      await node.platform.db.close();
      await expect(node.app.inject({ url: probe, headers: { 'x-api-key': seen.key } }), 503, 'store_unavailable');
      const gate = createAuthGate({
        config: testConfig({ FG_AUTH_DB_FAIL_OPEN: 'true', FG_AUTH_DB_FAIL_OPEN_ACKNOWLEDGED: 'true' }),
        security: node.platform.security,
        metrics: node.platform.metrics,
        resolver: node.auth.resolver,
        bindTenant: node.auth.bindTenant,
      });
      const failOpenApp = await buildServer(node.platform, {
        role: 'runbooks',
        version: '0.0.0-test',
        gate,
        plugins: [{ name: 'probes', plugin: probeRoutes(new Map(), node.auth.bindTenant) }],
      });
      try {
        await expect(failOpenApp.inject({ url: probe, headers: { 'x-api-key': seen.key } }), 200, 'auth fail open');
      } finally {
        await failOpenApp.close();
      }

      for (const app of [closed.app, open.app, node.app]) exported += `${(await app.inject({ url: '/metrics' })).body}\n`;
      for (const m of closed.platform.metrics.registry.getMetricsAsArray()) metrics.set(m.name, (m as unknown as { labelNames?: string[] }).labelNames ?? []);
    });
    after(async () => {
      await closed?.close();
      await open?.close();
      await node?.close();
      await redis?.stop();
    });

    it('names, label names and label values', () => {
      const cited = metricCitations();
      assert.ok(cited.length >= 20, `only ${cited.length} metric citations found: the parser lost them`);
      const problems: string[] = [];
      for (const c of cited) {
        const suffix = /_(count|sum|bucket)$/.exec(c.name);
        const base = metrics.has(c.name) ? c.name : suffix && metrics.has(c.name.slice(0, -suffix[0].length)) ? c.name.slice(0, -suffix[0].length) : undefined;
        if (!base) {
          problems.push(`${c.page}: \`${c.what}\`: no metric ${c.name} on /metrics`);
          continue;
        }
        const labelNames = [...metrics.get(base)!, ...(suffix?.[1] === 'bucket' ? ['le'] : [])];
        for (const l of c.labels) {
          if (!labelNames.includes(l.name)) {
            problems.push(`${c.page}: \`${c.what}\`: ${base} has no label ${l.name} (${labelNames.join(', ') || 'none'})`);
            continue;
          }
          if (l.value === undefined) continue;
          const series = new RegExp(`^${c.name}\\{[^}]*\\b${l.name}="${l.value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`, 'm');
          if (!series.test(exported)) problems.push(`${c.page}: \`${c.what}\`: no series with ${l.name}="${l.value}" after the incidents were provoked`);
        }
      }
      assert.deepEqual(problems, []);
    });
  });
});
