import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { CLI, cliEnv, ROOT } from '../../helpers/cli.js';
import { freePort, startThrowawayNats, trackChild } from '../../helpers/servers.js';
import { forgeTestEnv, type ForgeTestEnv } from '../spawn/helpers.js';
import { NETPLUS_TEMPLATE } from '../access/helpers.js';

const OUTPUT_DIR = path.resolve(import.meta.dirname, '../../../test-output/access');
const FLEET_SECRET = randomBytes(32).toString('base64');

interface Worker {
  readonly id: string;
  readonly dataDir: string;
  readonly runtime: NetnsLabRuntime;
  output: string;
  stop(): Promise<void>;
}

/** `frostgate serve --role worker` with its own data dir (so its own labs), capacity 1. */
async function startWorker(id: string, natsUrl: string): Promise<Worker> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `fg-tw-${id}-`));
  const env = cliEnv({
    FG_ENV: 'test',
    FG_LOG_LEVEL: 'warn',
    FG_DATA_DIR: dataDir,
    FG_PORT: String(await freePort()),
    FG_NATS_URL: natsUrl,
    FG_WORKER_ID: id,
    FG_WORKER_CAPACITY: '1',
    FG_WORKER_HEARTBEAT_MS: '1000',
    FG_FLEET_SECRET: FLEET_SECRET,
  });
  const child = trackChild(
    spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--role', 'worker'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const w: Worker = {
    id,
    dataDir,
    runtime: new NetnsLabRuntime({ stateDir: path.join(dataDir, 'labs') }),
    output: '',
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await w.runtime.reconcile(new Set());
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  child.stdout!.on('data', (d: Buffer) => (w.output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (w.output += d.toString()));
  return w;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Labs on remote workers (issue 24, point 7): two worker processes, a lab on each, a terminal on
 * each through the lab page in Chromium, the shell relayed from the worker over the sealed fleet
 * channel; Submit grades through the worker; the recording is written by the lab page's process.
 */
describe('terminals, grading and recordings of labs placed on worker agents', () => {
  let nats: Awaited<ReturnType<typeof startThrowawayNats>>;
  let workers: Worker[] = [];
  let fx: ForgeTestEnv;
  let t: TestApp;
  let browser: Browser;
  let baseUrl: string;
  let extraDir: string;

  before(async () => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    nats = await startThrowawayNats();
    const run = randomBytes(2).toString('hex');
    workers = [await startWorker(`tw${run}-a`, nats.url), await startWorker(`tw${run}-b`, nats.url)];
    extraDir = mkdtempSync(path.join(tmpdir(), 'fg-tw-app-'));
    const templates = path.join(extraDir, 'templates');
    mkdirSync(templates);
    copyFileSync(NETPLUS_TEMPLATE, path.join(templates, 'netplus-two-subnets.yaml'));
    fx = forgeTestEnv({
      FG_TEMPLATES_DIR: templates,
      FG_STORAGE_DIR: path.join(extraDir, 'storage'),
      FG_NATS_URL: nats.url,
      FG_ORCHESTRATOR_PLACEMENT: 'workers',
      FG_FLEET_SECRET: FLEET_SECRET,
    });
    t = await startTestApp({ env: fx.env });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    for (const w of workers) await w.stop();
    await fx?.cleanup();
    await nats?.stop();
    await nats?.dispose();
    if (extraDir) rmSync(extraDir, { recursive: true, force: true });
  });

  it('places a lab on each worker and opens a terminal in each through the lab page', { timeout: 400_000 }, async () => {
    const api = (method: string, url: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${baseUrl}${url}`, { method, headers: { 'x-api-key': t.adminKey, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    // The orchestrator's readiness reports the fleet's capacity: both workers, one lab each.
    const capacity = await until('both workers in readiness', async () => {
      const res = await fetch(`${baseUrl}/health/ready`);
      const body = (await res.json()) as { checks?: { labs?: { capacity?: { workers: number; labs: number; free: number } } } };
      const c = body.checks?.labs?.capacity;
      return c && c.workers === 2 ? c : undefined;
    });
    assert.deepEqual(capacity, { workers: 2, labs: 2, running: 0, free: 2 });

    const labs: Array<{ learner: string; scenarioId: string; accessUrl: string }> = [];
    for (const learner of ['learner-wa', 'learner-wb']) {
      const exchanged = await api('POST', '/v1/entitlements/exchange', {
        receipt: fx.receipt({ tenant: t.tenantId, subject: learner, track: 'netplus', credits: 1 }),
      });
      assert.equal(exchanged.status, 201, await exchanged.clone().text());
      const { entitlement_token } = (await exchanged.json()) as { entitlement_token: string };
      const spawned = await api(
        'POST',
        '/v1/spawn',
        { track: 'netplus', subject: learner, request_id: `r-${learner}-${randomBytes(3).toString('hex')}` },
        { 'x-client-id': 'web-workers', 'x-entitlement-token': entitlement_token },
      );
      assert.equal(spawned.status, 201, await spawned.clone().text());
      const body = (await spawned.json()) as { access_url: string; scenario_id: string };
      labs.push({ learner, scenarioId: body.scenario_id, accessUrl: body.access_url });
    }
    // One lab on each worker (capacity 1 each), none on the app's own host state.
    const placed = await Promise.all(workers.map(async (w) => (await w.runtime.list()).map((l) => l.scenarioId)));
    assert.deepEqual(placed.flat().sort(), labs.map((l) => l.scenarioId).sort(), `workers hold ${JSON.stringify(placed)}`);
    assert.deepEqual(
      placed.map((p) => p.length),
      [1, 1],
    );
    assert.deepEqual(await fx.runtime.list(), []);

    for (const [i, lab] of labs.entries()) {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('requestfailed', (r) => problems.push(`${r.url()} ${r.failure()?.errorText}`));
      try {
        await page.goto(lab.accessUrl);
        await page.locator('#tab-h1').click();
        await page.locator('#term-h1[data-state="connected"]').waitFor({ timeout: 30_000 });
        await page.locator('#term-h1 .xterm-helper-textarea').focus();
        await page.keyboard.type('ip -br addr\n');
        await page.locator('#term-h1 .xterm-rows', { hasText: '10.10.1.10/24' }).waitFor({ timeout: 30_000 });
        await page.keyboard.type(`ip route add default via 10.10.1.1 && echo relayed-$((40+${i}))\n`);
        await page.locator('#term-h1 .xterm-rows', { hasText: `relayed-${40 + i}` }).waitFor({ timeout: 30_000 });
        await page.screenshot({ path: path.join(OUTPUT_DIR, `terminal-on-worker-${i}.png`) });
        if (i === 0) {
          // Grading runs the template's checks on the worker holding the lab.
          await page.locator('#submit').click();
          await page.locator('#confirm-ok').click();
          await page.locator('#result:not([hidden])').waitFor({ timeout: 120_000 });
          assert.match(await page.locator('#score').innerText(), /^Score: \d+ \/ 100$/);
          assert.match((await page.locator('li[data-criterion="h1-gateway"]').getAttribute('class')) ?? '', /passed/);
          assert.doesNotMatch((await page.locator('li[data-criterion="h2-gateway"]').getAttribute('class')) ?? '', /passed/);
        }
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
      // The session's recording is written by the lab page's process, with what the learner typed and saw.
      const dir = path.join(extraDir, 'storage', 'scenarios', lab.scenarioId, 'recordings');
      const cast = await until('the recording', async () => {
        const files = readdirSync(dir).filter((f) => f.endsWith('.cast'));
        const text = files.map((f) => readFileSync(path.join(dir, f), 'utf8')).join('\n');
        return text.includes(`relayed-${40 + i}`) ? text : undefined;
      });
      assert.match(cast, /10\.10\.1\.10\/24/);
    }
  });
});
