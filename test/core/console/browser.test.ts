import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { loadDefaultRuleset } from '../../../src/core/engine/ruleset.js';
import { startConsoleRig, type ConsoleRig } from './helpers.js';

/** Screenshots of every console page (gitignored; look at them). */
const OUTPUT_DIR = path.resolve(import.meta.dirname, '../../../test-output/console');
const MINUTE = 60_000;

/** Debian's Chromium, headless; every context is a fresh profile (a person of their own). */
function launch(): Promise<Browser> {
  return chromium.launch({
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
}

/**
 * The default ruleset plus a rule that only alerts on /xmlrpc.php probes: a low-risk change (one
 * approval), and one the canary finds changes none of the recent traffic (the deploy gate's bound).
 */
function alertingRuleset(version: string) {
  const base = structuredClone(loadDefaultRuleset().source);
  return {
    ...base,
    version,
    rules: [
      ...base.rules,
      {
        id: 'xmlrpc-alert',
        description: 'Requests for /xmlrpc.php on a site that has no WordPress.',
        score: 30,
        when: {
          all: [
            { field: 'event_type', eq: 'http.request' },
            { field: 'payload.path', eq: '/xmlrpc.php' },
          ],
        },
        mitigations: [{ action: 'alert', target: 'payload.src_ip' }],
      },
    ],
  };
}

/**
 * Everything a page does that the test must see: console errors, uncaught exceptions, requests
 * that failed at the network, and API answers of 400 and more other than the ones a step expects.
 */
class Watch {
  readonly problems: string[] = [];
  private expected: RegExp[] = [];
  constructor(
    readonly page: Page,
    readonly who: string,
  ) {
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      // Chromium reports every 4xx answer as a console error too; those are judged as responses below.
      if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) return;
      this.problems.push(`${who} console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => this.problems.push(`${who} page error: ${e.message}`));
    page.on('requestfailed', (r) => this.problems.push(`${who} request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() < 400) return;
      const line = `${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`;
      if (this.expected.some((re) => re.test(line))) return;
      this.problems.push(`${who} unexpected answer: ${line}`);
    });
  }
  /** Allows an answer (method, path, status) for the step `fn`. */
  async expecting<T>(line: RegExp, fn: () => Promise<T>): Promise<T> {
    this.expected.push(line);
    try {
      return await fn();
    } finally {
      this.expected = this.expected.filter((e) => e !== line);
    }
  }
  assertClean(): void {
    assert.deepEqual(this.problems, [], `${this.who}: no console error, no failed request`);
  }
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), fullPage: true });
}

/** Opens a view and waits until it has drawn (its heading is there, nothing is loading). */
async function open(page: Page, hash: string, heading: RegExp): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  await page.locator('main h1').filter({ hasText: heading }).waitFor();
  await page.locator('main .loading').waitFor({ state: 'detached' });
}

/** Clicks and waits for the action's outcome in the status line. */
async function act(page: Page, selector: string): Promise<string> {
  await page.evaluate(`(() => { const el = document.getElementById('status'); el.className = ''; el.textContent = ''; })()`);
  await page.click(selector);
  await page.locator('#status.ok, #status.error').waitFor();
  return page.locator('#status').innerText();
}

/** Signs in through the embedded IdP's login form as a person would. */
async function signIn(context: BrowserContext, rig: ConsoleRig, name: 'alice' | 'bob'): Promise<{ page: Page; watch: Watch }> {
  const page = await context.newPage();
  const watch = new Watch(page, name);
  const user = rig.user(name);
  await page.goto(`${rig.baseUrl}/console`);
  await page.waitForURL(/\/interaction\//);
  await shot(page, `00-idp-login-${name}`);
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await page.click('button[type=submit]');
  await page.waitForURL(`${rig.baseUrl}/console`);
  await page
    .locator('#who')
    .filter({ hasText: `oidc:demo-${name}` })
    .waitFor();
  return { page, watch };
}

describe('the operators console in a real browser (Chromium)', () => {
  let rig: ConsoleRig;
  let browser: Browser;
  let alice: { page: Page; watch: Watch };
  let bob: { page: Page; watch: Watch };
  let changeId = '';

  before(async () => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    rig = await startConsoleRig({ env: { FG_SESSION_IDLE_MINUTES: '30' } });
    // Some traffic, so there are decisions (and their ledger entries) to open.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${rig.baseUrl}/defend`, {
        method: 'POST',
        headers: { 'x-api-key': rig.adminKey, 'content-type': 'application/json' },
        body: JSON.stringify({
          event_id: `browser-ev-${i}`,
          source: 'nginx',
          event_type: 'http.request',
          occurred_at: new Date().toISOString(),
          payload: { src_ip: `100.64.7.${i + 1}`, path: '/wp-login.php', status: 404 },
        }),
      });
      assert.equal(res.status, 200, await res.text());
    }
    browser = await launch();
    alice = await signIn(await browser.newContext({ viewport: { width: 1400, height: 900 } }), rig, 'alice');
    bob = await signIn(await browser.newContext({ viewport: { width: 1400, height: 900 } }), rig, 'bob');
  });
  after(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('alice proposes a change; she is refused when approving it herself; bob approves it in his own session', async () => {
    const { page, watch } = alice;
    await open(page, '#/governance', /Governance/);
    await shot(page, '01-governance-empty');
    await page.selectOption('#propose select[name=kind]', 'ruleset');
    await page.fill('#propose textarea[name=content]', JSON.stringify(alertingRuleset('console-browser-1'), null, 2));
    await page.fill('#propose input[name=justification]', 'alert on WordPress probes');
    await page.click('#propose button[type=submit]');
    await page
      .locator('main h1')
      .filter({ hasText: /^Change chg_/ })
      .waitFor();
    changeId = (await page.locator('main h1').innerText()).replace('Change ', '');
    assert.match(await page.locator('#fact-author').innerText(), /oidc:demo-alice \(you\)/);
    assert.match(await page.locator('#change-diff').innerText(), /\+ .*xmlrpc-alert/, 'the diff shows the new rule');
    await shot(page, '02-change-proposed');

    const refused = await watch.expecting(/^POST \/governance\/changes\/chg_\w+\/approve 403$/, () => act(page, '#approve'));
    assert.match(refused, /two_person_rule/);
    assert.match(refused, /self_approval/);
    await shot(page, '03-author-refused');

    await open(bob.page, `#/change/${changeId}`, /^Change chg_/);
    const approved = await act(bob.page, '#approve');
    assert.match(approved, /done/);
    await bob.page.locator('main table td').filter({ hasText: 'oidc:demo-bob' }).waitFor();
    assert.match(await bob.page.locator('#fact-status').innerText(), /approved/);
    await shot(bob.page, '04-approved-by-bob');
    watch.assertClean();
    bob.watch.assertClean();
  });

  it('alice runs the canary, deploys, then rolls back, each step shown with its progress and outcome', async () => {
    const { page, watch } = alice;
    await open(page, `#/change/${changeId}`, /^Change chg_/);
    assert.match(await act(page, '#canary'), /done/);
    assert.doesNotMatch(await page.locator('main').innerText(), /No canary has run/);
    assert.match(await act(page, '#deploy'), /done/);
    assert.match(await page.locator('#fact-status').innerText(), /deployed/);
    await shot(page, '05-deployed');
    await page.fill('#reason', 'alerts too noisy for now');
    assert.match(await act(page, '#rollback'), /done/);
    assert.match(await page.locator('#fact-status').innerText(), /rolled_back/);
    await shot(page, '06-rolled-back');
    watch.assertClean();
  });

  it('alice creates a key (its secret shown once) and revokes it', async () => {
    const { page, watch } = alice;
    await open(page, '#/keys', /API keys/);
    await page.fill('#key-name', 'browser-sensor');
    await page.check('input[name=scope][value="defend:write"]');
    await page.click('form.card button[type=submit]');
    const secret = await page.locator('#new-key-secret').innerText();
    assert.match(secret, /^fg_[a-z2-9]{12}_/);
    await shot(page, '07-key-created');
    const keyId = `key_${secret.split('_')[1]}`;
    const row = page.locator('tr').filter({ hasText: keyId });
    assert.match(await row.innerText(), /oidc:demo-alice/, 'the key belongs to alice');
    assert.match(await act(page, `button[data-revoke="${keyId}"]`), /done/);
    assert.match(await page.locator('tr').filter({ hasText: keyId }).innerText(), /revoked/);
    // The secret is not shown again once the page moved on.
    assert.equal(await page.locator('#new-key-secret').count(), 0);
    const refused = await fetch(`${rig.baseUrl}/decisions`, { headers: { 'x-api-key': secret } });
    assert.equal(refused.status, 401, 'the revoked key is refused');
    await shot(page, '08-key-revoked');
    watch.assertClean();
  });

  it('alice opens a decision and sees its ledger inclusion proof verified in the page', async () => {
    const { page, watch } = alice;
    await open(page, '#/decisions', /Decisions/);
    await shot(page, '09-decisions');
    await page.fill('input[name=entity]', '100.64.7.2');
    await page.click('#decision-filters button[type=submit]');
    await page.locator('main tbody tr').first().waitFor();
    assert.equal(await page.locator('main tbody tr').count(), 1, 'the IP filter keeps one decision');
    await page.locator('main tbody a').first().click();
    await page.locator('#proof-status.verified, #proof-status.failed').waitFor();
    const proof = await page.locator('#proof-status').innerText();
    assert.match(proof, /^✔ Verified in this page: entry \d+ is in the decisions log of \d+ entries/, proof);
    await shot(page, '10-decision-proof-verified');
    watch.assertClean();
  });

  it('every other page draws without an error: blocks, tenants, labs, scores, audit, sessions', async () => {
    const { page, watch } = alice;
    for (const [hash, heading, name] of [
      ['#/blocks', /Active blocks/, '11-blocks'],
      ['#/tenants', /Tenants/, '12-tenants'],
      ['#/labs', /Labs/, '13-labs'],
      ['#/scores', /Scores/, '14-scores'],
      ['#/audit', /Audit trail/, '15-audit'],
      ['#/sessions', /Console sessions/, '16-sessions'],
    ] as const) {
      await open(page, hash, heading);
      assert.equal(await page.locator('main .error').count(), 0, `${hash} drew without an error`);
      await shot(page, name);
    }
    await open(page, '#/audit', /Audit trail/);
    assert.match(await page.locator('#checkpoint-status').innerText(), /Latest signed checkpoint: \d+ entries/);
    assert.match(await page.locator('main').innerText(), /governance\.(approve|deploy)/);
    watch.assertClean();
  });

  it('alice removes a block early from the active-blocks page: it leaves the list, bouncers stop getting it, the audit trail has her reason', async () => {
    const { page, watch } = alice;
    const ip = '100.64.7.50';
    const last = Date.now() - 1000;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${rig.baseUrl}/defend`, {
        method: 'POST',
        headers: { 'x-api-key': rig.adminKey, 'content-type': 'application/json' },
        body: JSON.stringify({
          source: 'sshd',
          event_type: 'auth.failure',
          occurred_at: new Date(last - (4 - i) * 1000).toISOString(),
          payload: { service: 'ssh', src_ip: ip, username: `u${i}` },
        }),
      });
      assert.equal(res.status, 200, await res.text());
    }
    const bouncerView = async () => (await fetch(`${rig.baseUrl}/v1/decisions?ip=${ip}`, { headers: { 'x-api-key': rig.adminKey } })).text();
    assert.notEqual(await bouncerView(), 'null', 'blocked before the removal');
    await open(page, '#/blocks', /Active blocks/);
    const form = `form[data-remove="ip:${ip}"]`;
    await page.locator(form).waitFor();
    await page.fill(`${form} input[name=reason]`, 'our own load balancer health checks');
    await shot(page, '11b-block-before-removal');
    const outcome = await act(page, `${form} button[type=submit]`);
    assert.match(outcome, /^Removing the block on 100\.64\.7\.50 \(bouncers drop it at their next pull\): done\.$/, outcome);
    assert.equal(await page.locator(form).count(), 0, 'the block left the list');
    await shot(page, '11c-block-removed');
    assert.equal(await bouncerView(), 'null', 'bouncers no longer get the IP');
    await open(page, '#/audit', /Audit trail/);
    await page.locator('main').filter({ hasText: 'decision.block_remove' }).waitFor();
    assert.match(await page.locator('main').innerText(), /our own load balancer health checks/);
    watch.assertClean();
  });

  it("a form another origin posts with alice's cookie is refused (no CSRF token); from another site the cookie is not even sent", async () => {
    const forge = (target: string) =>
      `<!doctype html><form id="f" method="post" enctype="text/plain" action="${target}/keys"><input name='{"name":"evil","scopes":["admin"],"x":"' value='"}'></form><script>document.getElementById('f').submit()</script>`;
    const evil = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(forge(rig.baseUrl)));
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const page = await alice.page.context().newPage();
      // Same site (127.0.0.1), another origin: the browser sends the cookie; the missing token stops it.
      const [answer] = await Promise.all([page.waitForResponse(`${rig.baseUrl}/keys`), page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`)]);
      assert.equal(answer.status(), 403);
      assert.equal(((await answer.json()) as { reason: string }).reason, 'csrf');
      await shot(page, '17-csrf-refused');
      // Another site (localhost is not 127.0.0.1): SameSite=Lax keeps the cookie home.
      const [crossSite] = await Promise.all([
        page.waitForResponse(`${rig.baseUrl}/keys`),
        page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`),
      ]);
      assert.equal(crossSite.status(), 401);
      await page.close();
      const keys = await fetch(`${rig.baseUrl}/keys`, { headers: { 'x-api-key': rig.adminKey } });
      assert.ok(!((await keys.json()) as { keys: Array<{ name: string }> }).keys.some((k) => k.name === 'evil'), 'no key was created');
    } finally {
      evil.close();
      evil.closeAllConnections();
    }
  });

  it('bob signs out: the session is revoked, and the console asks for a sign-in again', async () => {
    const { page, watch } = bob;
    await open(page, '#/sessions', /Console sessions/);
    await page.click('#logout');
    await page.locator('.signed-out h1').waitFor();
    await shot(page, '19-signed-out');
    await page.goto(`${rig.baseUrl}/console`);
    await page.waitForURL(/\/interaction\//);
    watch.assertClean();
  });
  it('an idle session expires: the next click sends alice to the IdP to sign in again', async () => {
    const { page, watch } = alice;
    rig.clock.advance(31 * MINUTE);
    await watch.expecting(/^GET \/\S+ 401$/, async () => {
      await page.evaluate(`location.hash = '#/keys'`);
      await page.waitForURL(/\/interaction\//);
    });
    await page.locator('#username').waitFor();
    await shot(page, '18-expired-back-at-idp');
    watch.assertClean();
  });
});
