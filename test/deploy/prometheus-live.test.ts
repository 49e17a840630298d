import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { ROLE_PORTS, type RoleName } from '../../src/role-names.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { CLI, ROOT, cliEnv } from '../helpers/cli.js';
import { createThrowawayDatabase } from '../helpers/postgres.js';
import { freePort, startThrowawayNats, trackChild, waitForPort } from '../helpers/servers.js';
import { forgeTestEnv } from '../forge/spawn/helpers.js';
import { PROM_DIR, RULES_FILE, loadRules, selectors } from './rules.js';

/**
 * Debian's real Prometheus, with the rules of deploy/prometheus, scrapes every FrostGate role (each
 * its own platform on one Postgres database; the worker as its own `frostgate serve --role worker`
 * process on a throwaway NATS). Traffic goes through the `all` node: decisions, an ingest batch,
 * refused keys, a tenant mismatch, a spawn that builds a real lab, and its grading. Then every
 * expression of every Grafana panel and every metric selector of every alert must return series:
 * no dashboard or alert names a metric (or label value) the code does not export.
 */

const DASHBOARDS = path.join(ROOT, 'deploy/grafana/dashboards');
const SPLIT_ROLES = ['core', 'admin', 'spawn', 'orchestrator', 'scoreboard'] as const;

interface Panel {
  readonly title: string;
  readonly targets: ReadonlyArray<{ expr: string }>;
}

function dashboardExpressions(): Array<{ where: string; expr: string }> {
  return readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => {
      const d = JSON.parse(readFileSync(path.join(DASHBOARDS, f), 'utf8')) as { panels: Panel[] };
      return d.panels.flatMap((p) => p.targets.map((t) => ({ where: `${f}: ${p.title}`, expr: t.expr })));
    });
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a real Prometheus scraping every role sees every metric the dashboards and alerts use', { timeout: 300_000 }, async (t) => {
  const pg = await createThrowawayDatabase('fg_prom');
  const nats = await startThrowawayNats();
  const fx = forgeTestEnv({ FG_CHECKPOINT_INTERVAL_S: '1' });
  const tmp = mkdtempSync(path.join(tmpdir(), 'fg-prom-'));
  const apps: TestApp[] = [];
  // eslint-disable-next-line prefer-const -- assigned below, read by the cleanup registered first
  let prometheus: ChildProcess | undefined;
  // eslint-disable-next-line prefer-const -- assigned below, read by the cleanup registered first
  let worker: ChildProcess | undefined;
  let workerOutput = '';
  t.after(async () => {
    await Promise.all([stopChild(prometheus), stopChild(worker)]);
    for (const a of apps.reverse()) await a.close();
    await fx.cleanup();
    await nats.stop();
    await nats.dispose();
    await pg.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  // Every role, each on its own port.
  const ports = new Map<RoleName, number>();
  const env = { ...fx.env, FG_DB_URL: pg.url };
  const all = await startTestApp({ role: 'all', env });
  apps.push(all);
  ports.set('all', await freePort());
  await all.app.listen({ host: '127.0.0.1', port: ports.get('all')! });
  for (const role of SPLIT_ROLES) {
    const app = await startTestApp({ role, env: { ...env, FG_DATA_DIR: mkdtempSync(path.join(tmp, `${role}-`)) } });
    apps.push(app);
    ports.set(role, await freePort());
    await app.app.listen({ host: '127.0.0.1', port: ports.get(role)! });
  }
  ports.set('worker', await freePort());
  worker = trackChild(
    spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--role', 'worker'], {
      cwd: ROOT,
      env: cliEnv({
        FG_ENV: 'test',
        FG_LOG_LEVEL: 'warn',
        FG_DB_URL: pg.url,
        FG_NATS_URL: nats.url,
        FG_DATA_DIR: mkdtempSync(path.join(tmp, 'worker-')),
        FG_PORT: String(ports.get('worker')),
        FG_WORKER_ID: `prom-${randomBytes(3).toString('hex')}`,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  worker.stdout!.on('data', (d: Buffer) => (workerOutput += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (workerOutput += d.toString()));
  await waitForPort(ports.get('worker')!, 90_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${workerOutput}`);
  });

  // The deployed scrape config with this test's targets and a fast cadence; the rules unchanged.
  const config = parse(readFileSync(path.join(PROM_DIR, 'prometheus.yml'), 'utf8')) as {
    global: Record<string, unknown>;
    rule_files: string[];
    scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[]; labels: { role: RoleName } }> }>;
  };
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  config.rule_files = [RULES_FILE];
  for (const job of config.scrape_configs) {
    const role = job.static_configs[0]!.labels.role;
    job.static_configs[0]!.targets = [`127.0.0.1:${ports.get(role)}`];
    assert.equal(job.static_configs[0]!.targets.length, 1);
  }
  // The `all` node (npm start) is scraped as its own job, as an operator of one process would.
  config.scrape_configs.push({ job_name: 'frostgate-all', static_configs: [{ targets: [`127.0.0.1:${ports.get('all')}`], labels: { role: 'all' } }] });
  assert.deepEqual(config.scrape_configs.map((j) => j.static_configs[0]!.labels.role).sort(), Object.keys(ROLE_PORTS).sort(), 'a job per role');
  writeFileSync(path.join(tmp, 'prometheus.yml'), stringify(config));
  const promPort = await freePort();
  let promOutput = '';
  prometheus = trackChild(
    spawn(
      'prometheus',
      [`--config.file=${path.join(tmp, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(tmp, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  prometheus.stderr!.on('data', (d: Buffer) => (promOutput += d.toString()));
  const prom = `http://127.0.0.1:${promPort}`;
  const query = async (expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
    const res = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data.result;
  };

  // Traffic through the `all` node.
  const base = `http://127.0.0.1:${ports.get('all')}`;
  const key = (
    await all.auth.store.createKey({
      tenantId: all.tenantId,
      scopes: ['defend:write', 'ingest:write', 'decisions:read', 'forge:spawn', 'forge:operate', 'admin'],
    })
  ).key;
  const call = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${url}`, {
      method,
      headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  const minute = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
  const ssh = (s: number) => ({
    source: 'sshd',
    event_type: 'auth.failure',
    occurred_at: new Date(minute + s * 1000).toISOString(),
    payload: { service: 'ssh', src_ip: '100.64.77.1', username: `u${s}` },
  });
  for (let s = 0; s < 6; s++) assert.equal((await call('POST', '/defend', ssh(s))).status, 200);
  assert.equal((await call('POST', '/ingest', { events: [10, 11, 12].map(ssh) })).status, 202);
  assert.equal((await call('GET', '/v1/decisions?ip=100.64.77.1')).status, 200);
  assert.equal((await call('GET', '/decisions', undefined, { 'x-api-key': 'fg_not-a-key' })).status, 401);
  assert.equal((await call('GET', '/decisions', undefined, { 'x-tenant-id': 'someone-else' })).status, 403);
  const ex = await call('POST', '/v1/entitlements/exchange', { receipt: fx.receipt({ tenant: all.tenantId, subject: 'pam', track: 'netplus' }) });
  assert.equal(ex.status, 201, await ex.text());
  const spawned = await call('POST', '/v1/spawn', { track: 'netplus', subject: 'pam', request_id: 'prom-1' }, { 'x-client-id': 'portal' });
  const spawnBody = (await spawned.json()) as { scenario_id: string; state: string };
  assert.equal(spawned.status, 201, JSON.stringify(spawnBody));
  const graded = await call('POST', `/internal/scenario/${spawnBody.scenario_id}/complete`, { reason: 'submit' });
  assert.equal(graded.status, 200, await graded.text());

  // Prometheus has scraped the traffic: the grading is in the samples of the `all` job.
  await until(
    'Prometheus to scrape the grading',
    async () => ((await query('sum(scenarios_graded_total{job="frostgate-all"})'))[0]?.value[1] === '1' ? true : undefined),
    60_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${promOutput.slice(-3000)}`);
  });
  // Every role is up and answers ready through the metric.
  const up = await until(
    'every target up and ready',
    async () => {
      const r = await query('min by (job) (up) * on (job) min by (job) (health_ready)');
      return r.length === Object.keys(ROLE_PORTS).length && r.every((s) => s.value[1] === '1') ? r : undefined;
    },
    60_000,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(await query('up'))} ${JSON.stringify(await query('health_ready'))}\n${workerOutput}`);
  });
  assert.equal(up.length, 7);

  // Every panel expression and every selector of every alert returns series (rate windows and
  // recording rules need a few more scrapes and evaluations: poll until all answer or time runs out).
  const checks = [
    ...dashboardExpressions(),
    ...loadRules()
      .filter((r) => r.alert)
      .flatMap((r) => selectors(r.expr).map((s) => ({ where: `alert ${r.alert}`, expr: s }))),
  ];
  assert.ok(checks.length >= 40, `only ${checks.length} expressions`);
  let empty: string[] = [];
  await until(
    'every panel and alert expression to return series',
    async () => {
      empty = [];
      for (const c of checks) if ((await query(c.expr)).length === 0) empty.push(`${c.where}: ${c.expr}`);
      return empty.length === 0 ? true : undefined;
    },
    60_000,
  ).catch(() => assert.deepEqual(empty, [], 'expressions without series'));

  // Values, not only names: the traffic above is what the panels show.
  const value = async (expr: string) => Number((await query(expr))[0]?.value[1]);
  // The ingest batch is decided by whichever ingest consumer on the shared database takes it (all or core).
  const decided = 'sum(decisions_total{job=~"frostgate-all|frostgate-core"})';
  await until('six /defend and three ingested decisions', async () => ((await value(decided)) >= 9 ? true : undefined), 60_000).catch(async () =>
    assert.fail(`six /defend and three ingested decisions: ${await value(decided)}`),
  );
  assert.ok((await value('sum(decision_rules_triggered_total{job="frostgate-all"})')) >= 1);
  assert.equal(await value('sum(spawns_total{job="frostgate-all",track="netplus",result="created"})'), 1);
  assert.equal(await value('sum(tenant_mismatch_total{job="frostgate-all"})'), 1);
  assert.ok((await value('sum(auth_failure_total{job="frostgate-all"})')) >= 1);
  assert.equal(await value('sum(lab_build_duration_seconds_count{job="frostgate-all",result="ok"})'), 1);
  assert.equal(await value('sum(scenario_score_percent_count{job="frostgate-all",track="netplus"})'), 1);
  assert.ok((await value('max(ledger_entries{job="frostgate-all",log="decisions"})')) >= 9);
  assert.deepEqual(
    (await query('frostgate_info{job="frostgate-worker"}')).map((s) => s.metric.role),
    ['worker'],
  );
  // And an empty expression is reported: the check can fail.
  assert.deepEqual(await query('frostgate_metric_that_does_not_exist'), []);
});
