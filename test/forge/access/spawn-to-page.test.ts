import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { forgeTestEnv, type ForgeTestEnv } from '../spawn/helpers.js';
import { NETPLUS_TEMPLATE } from './helpers.js';

const OUTPUT_DIR = path.resolve(import.meta.dirname, '../../../test-output/access');

/**
 * The whole learner journey on one server running every role: an entitlement, POST /v1/spawn
 * building the netplus lab, the access_url it returns opened in Chromium, terminals in the
 * devices, Submit graded by the scoreboard, the score on the page.
 */
describe('from /v1/spawn to a scored lab in the browser (role all)', () => {
  let fx: ForgeTestEnv;
  let t: TestApp;
  let browser: Browser;
  let baseUrl: string;
  let extraDir: string;

  before(async () => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    extraDir = mkdtempSync(path.join(tmpdir(), 'fg-access-role-'));
    const templates = path.join(extraDir, 'templates');
    mkdirSync(templates);
    copyFileSync(NETPLUS_TEMPLATE, path.join(templates, 'netplus-two-subnets.yaml'));
    fx = forgeTestEnv({ FG_TEMPLATES_DIR: templates, FG_STORAGE_DIR: path.join(extraDir, 'storage') });
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
    await fx?.cleanup();
    if (extraDir) rmSync(extraDir, { recursive: true, force: true });
  });

  it('spawns, opens the access_url, works in h1 and h2, submits and sees the score', async () => {
    const api = (method: string, url: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${baseUrl}${url}`, { method, headers: { 'x-api-key': t.adminKey, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const learner = 'learner-e2e';
    const exchanged = await api('POST', '/v1/entitlements/exchange', {
      receipt: fx.receipt({ tenant: t.tenantId, subject: learner, track: 'netplus', credits: 2 }),
    });
    assert.equal(exchanged.status, 201, await exchanged.clone().text());
    const { entitlement_token } = (await exchanged.json()) as { entitlement_token: string };
    const spawned = await api(
      'POST',
      '/v1/spawn',
      { track: 'netplus', subject: learner, request_id: 'r-access-e2e' },
      { 'x-client-id': 'web-e2e', 'x-entitlement-token': entitlement_token },
    );
    assert.equal(spawned.status, 201, await spawned.clone().text());
    const { access_url, scenario_id } = (await spawned.json()) as { access_url: string; scenario_id: string };
    assert.ok(access_url.startsWith(`${baseUrl}/v1/access/${scenario_id}?token=`), access_url);

    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    try {
      await page.goto(access_url);
      assert.equal(page.url(), `${baseUrl}/v1/access/${scenario_id}`);
      assert.equal(await page.locator('#lab-title').innerText(), 'Two subnets through a router: default gateways');
      for (const [device, address, gateway] of [
        ['h1', '10.10.1.10/24', '10.10.1.1'],
        ['h2', '10.10.2.20/24', '10.10.2.1'],
      ] as const) {
        await page.locator(`#tab-${device}`).click();
        await page.locator(`#term-${device}[data-state="connected"]`).waitFor({ timeout: 20_000 });
        await page.locator(`#term-${device} .xterm-helper-textarea`).focus();
        await page.keyboard.type('ip -br addr\n');
        await page.locator(`#term-${device} .xterm-rows`, { hasText: address }).waitFor({ timeout: 20_000 });
        await page.keyboard.type(`ip route add default via ${gateway} && echo route-$((2*2))-set\n`);
        await page.locator(`#term-${device} .xterm-rows`, { hasText: 'route-4-set' }).waitFor({ timeout: 20_000 });
      }
      await page.locator('#submit').click();
      await page.locator('#confirm-ok').click();
      await page.locator('#result:not([hidden])').waitFor({ timeout: 90_000 });
      const score = await page.locator('#score').innerText();
      assert.match(score, /^Score: \d+ \/ 100$/);
      for (const criterion of ['h1-gateway', 'h2-gateway'])
        assert.match((await page.locator(`li[data-criterion="${criterion}"]`).getAttribute('class')) ?? '', /passed/);
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'spawn-to-score.png') });
      // The scoreboard's own API reports the same score.
      const scores = await fetch(`${baseUrl}/v1/scores/${scenario_id}`, { headers: { 'x-api-key': t.adminKey } });
      assert.equal(scores.status, 200);
      const doc = (await scores.json()) as { score: { total: number; max: number } };
      assert.equal(score, `Score: ${doc.score.total} / ${doc.score.max}`);
    } finally {
      await context.close();
    }
  });
});
