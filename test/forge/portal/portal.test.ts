import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { verifyVerdict } from '../../../src/forge/scoring/verdict.js';
import { launchChromium, watchPage } from '../../helpers/browser.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { forgeTestEnv, type ForgeTestEnv } from '../spawn/helpers.js';

const OUTPUT_DIR = path.resolve(import.meta.dirname, '../../../test-output/portal');

/**
 * The learner portal in Debian's Chromium, on one server running every role: sign in with an
 * entitlement token, the catalogue (what the entitlement allows), start a lab from it, back to
 * "my labs", a used access link that leads to the portal instead of a dead end, a sign-in link
 * in a second browser and re-entry into the running lab, End lab, then the graded lab's results
 * downloaded from the portal and verified, its certificate page, and progress per track.
 */
describe('the learner portal in a real browser (Chromium)', () => {
  let fx: ForgeTestEnv;
  let t: TestApp;
  let browser: Browser;
  let baseUrl: string;
  let extraDir: string;
  const learner = `portal-${randomBytes(4).toString('hex')}`;
  /** The lab the browser walk started (another learner probes it below). */
  let firstLab: string | undefined;

  before(async () => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    extraDir = mkdtempSync(path.join(tmpdir(), 'fg-portal-'));
    fx = forgeTestEnv({ FG_STORAGE_DIR: path.join(extraDir, 'storage') });
    t = await startTestApp({ env: fx.env });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await fx?.cleanup();
    if (extraDir) rmSync(extraDir, { recursive: true, force: true });
  });

  const api = async (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${baseUrl}${url}`, {
      method,
      headers: { 'x-api-key': t.adminKey, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body ? { body: JSON.stringify(body) } : {}),
      redirect: 'manual',
    });
    const text = await res.text();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test reads whatever JSON the server answered
    let json: Record<string, any> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* an HTML page */
    }
    return { status: res.status, body: json, text, headers: res.headers };
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), fullPage: true });

  it('sign in, catalogue, start, my labs, a used link, re-entry from another browser, end, results, certificate, progress', async () => {
    const receipt = await api('POST', '/v1/receipts', { track: 'netplus', subject: learner, credits: 3 });
    assert.equal(receipt.status, 201, receipt.text);
    const entitlementToken = receipt.body.entitlement_token as string;

    const context = await browser.newContext({ viewport: { width: 1300, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    // The refused (already used) link is provoked on purpose below.
    const problems = watchPage(page, (status, url) => status === 401 && /\/v1\/access\/scn_[^/]+\?token=/.test(url));
    let second: Awaited<ReturnType<Browser['newContext']>> | undefined;
    try {
      // Sign-in page, then sign in with the entitlement token.
      await page.goto(`${baseUrl}/v1/portal`);
      await page.locator('#sign-in').waitFor();
      await shot(page, '1-sign-in');
      await page.locator('#entitlement-token').fill(entitlementToken);
      await page.locator('#sign-in-button').click();
      await page.locator('#who', { hasText: learner }).waitFor();

      // The catalogue says what the entitlement allows: netplus yes, ccna (no entitlement) no.
      await page.locator('#no-labs').waitFor();
      assert.equal(await page.locator('.card[data-template="netplus-tiny"] button.start').count(), 1);
      assert.equal(await page.locator('.card[data-template="ccna-tiny"] button.start').count(), 0);
      assert.match(await page.locator('.card[data-template="ccna-tiny"] .refused').innerText(), /\S/);
      assert.equal(await page.locator('.track-progress[data-track="netplus"] [role="progressbar"]').getAttribute('aria-valuenow'), '0');
      await shot(page, '2-portal-empty');

      // Start a lab: the browser lands on the lab page, its link spent by this browser.
      await page.locator('.card[data-template="netplus-tiny"] button.start').click();
      await page.waitForURL(/\/v1\/access\/scn_[A-Za-z0-9_-]+$/, { timeout: 60_000 });
      await page.locator('#lab-title').waitFor();
      await page.locator('.term[data-state="connected"]').first().waitFor({ timeout: 30_000 });
      const scenarioId = /\/v1\/access\/(scn_[A-Za-z0-9_-]+)$/.exec(page.url())![1]!;
      firstLab = scenarioId;
      await shot(page, '3-lab-from-portal');

      // Back to my labs from the lab page's header: the lab is running and can be re-entered.
      await page.locator('a.my-labs').click();
      const row = page.locator(`tr[data-scenario="${scenarioId}"]`);
      await row.waitFor();
      assert.equal(await row.getAttribute('data-status'), 'running');
      assert.equal(await row.locator('button.enter').count(), 1);
      await shot(page, '4-my-labs-running');

      // The spawn's own access link, already used (here: spent by a link the API issued and this browser
      // opened): a second browser opening it sees "already used" with the way to the portal.
      const link = await api('POST', '/v1/portal/links', { subject: learner });
      assert.equal(link.status, 201, link.text);
      second = await browser.newContext({ viewport: { width: 1300, height: 900 } });
      const other = await second.newPage();
      const otherProblems = watchPage(other, (status, url) => status === 401 && /(\/v1\/access\/scn_[^/]+\?token=|\/v1\/portal\?token=)/.test(url));
      const reEntry = await api('POST', `/v1/portal/links`, { subject: learner });
      assert.equal(reEntry.status, 201);
      // A used access link: take one from the portal for this browser, spend it, then open it in the other.
      const enter = await page.evaluate(async (id) => {
        const r = await fetch(`/v1/portal/labs/${id}/enter`, { method: 'POST' });
        return (await r.json()) as { access_url: string };
      }, scenarioId);
      const spent = await fetch(enter.access_url, { redirect: 'manual' });
      assert.equal(spent.status, 303, 'the link is spent by its first use');
      await other.goto(enter.access_url);
      assert.equal(await other.locator('#refusal').getAttribute('data-reason'), 'replayed');
      await shot(other, '5-used-link');
      await other.locator('a#next').click();
      await other.locator('#sign-in').waitFor();
      // The sign-in link the LMS handed over signs the second browser in; it works once.
      await other.goto(link.body.portal_url as string);
      await other.locator('#who', { hasText: learner }).waitFor();
      assert.equal(other.url(), `${baseUrl}/v1/portal`, 'the sign-in token is gone from the URL');
      await other.locator(`tr[data-scenario="${scenarioId}"] button.enter`).click();
      await other.waitForURL(`${baseUrl}/v1/access/${scenarioId}`);
      await other.locator('.term[data-state="connected"]').first().waitFor({ timeout: 30_000 });
      await shot(other, '6-re-entered');
      assert.deepEqual(otherProblems, [], 'the second browser: no console error or failed request');
      const replayedLink = await api('GET', `/v1/portal?token=${encodeURIComponent(link.body.portal_url.split('token=')[1] as string)}`);
      assert.equal(replayedLink.status, 401, 'a sign-in link works once');
      assert.match(replayedLink.text, /already used/);

      // End the lab from the first browser's lab page: graded and destroyed.
      await page.goto(`${baseUrl}/v1/access/${scenarioId}`);
      await page.locator('#end-lab').click();
      await page.locator('#confirm-ok').click();
      await page.locator('#notice', { hasText: 'The lab has ended' }).waitFor({ timeout: 120_000 });
      // The header stays in view once the result is shown (it was scrolled off by the result before).
      assert.equal(await page.evaluate('document.scrollingElement.scrollTop'), 0, 'the document did not scroll');
      assert.equal((await page.locator('header.bar').boundingBox())!.y, 0, 'the header is at the top');
      await shot(page, '6b-lab-ended');

      // My labs: graded, with results and a certificate; progress moved.
      await page.goto(`${baseUrl}/v1/portal`);
      assert.equal(await row.getAttribute('data-status'), 'graded');
      assert.equal(await row.locator('button.enter').count(), 0, 'an ended lab cannot be entered');
      assert.match(await row.locator('.score').innerText(), /1\/1/);
      assert.equal(
        await page.locator('.track-progress[data-track="netplus"] [role="progressbar"]').getAttribute('aria-valuenow'),
        '100',
        "the track's one lab graded at 100%",
      );
      await shot(page, '7-my-labs-graded');
      const files: Record<string, Buffer> = {};
      for (const a of await row.locator('.files a').all()) {
        const [download] = await Promise.all([page.waitForEvent('download'), a.click()]);
        files[(await a.innerText()).trim()] = readFileSync(await download.path());
      }
      const check = verifyVerdict({
        scoreBytes: files['score.json']!,
        evidenceBytes: files['evidence']!,
        sigBytes: files['verdict.sig']!,
        pubBytes: files['verdict.pub']!,
      });
      assert.ok(check.ok, JSON.stringify(check));
      await row.locator('a.certificate').click();
      await page.locator('#certificate').waitFor();
      assert.equal(await page.locator('#verdict-check').getAttribute('data-verified'), 'true');
      assert.match(await page.locator('#cert-score').innerText(), /1 \/ 1/);
      await shot(page, '8-certificate');
      assert.deepEqual(problems, [], 'no console error or failed request');
    } catch (err) {
      await shot(page, 'failure').catch(() => undefined);
      throw new Error(`${(err as Error).message}\n${problems.join('\n')}`, { cause: err });
    } finally {
      await second?.close();
      await context.close();
    }
  });

  it("another learner, no session, another site, a forged or spent link: none reaches a learner's lab", async () => {
    assert.ok(firstLab, 'the walk above started a lab');
    const mallory = `mallory-${randomBytes(4).toString('hex')}`;
    const link = await api('POST', '/v1/portal/links', { subject: mallory });
    const signedIn = await api('GET', `/v1/portal?token=${encodeURIComponent(link.body.portal_url.split('token=')[1] as string)}`, undefined, {});
    assert.equal(signedIn.status, 303);
    const cookie = /fg_portal=[^;]+/.exec(signedIn.headers.get('set-cookie') ?? '')![0];
    assert.match(signedIn.headers.get('set-cookie') ?? '', /HttpOnly/);
    const as = (headers: Record<string, string> = {}) => ({ cookie, 'x-api-key': '', ...headers });
    for (const [method, url] of [
      ['POST', `/v1/portal/labs/${firstLab}/enter`],
      ['GET', `/v1/portal/labs/${firstLab}/results/score.json`],
      ['GET', `/v1/portal/labs/${firstLab}/certificate`],
    ] as const) {
      const r = await api(method, url, undefined, as());
      assert.equal(r.status, 404, `${method} ${url} as another learner: ${r.text}`);
      const none = await api(method, url, undefined, { 'x-api-key': '' });
      assert.equal(none.status, 401, `${method} ${url} without a session`);
    }
    const page = await api('GET', '/v1/portal', undefined, as());
    assert.doesNotMatch(page.text, new RegExp(firstLab), "the other learner's portal does not list the lab");
    const crossSite = await api('POST', '/v1/portal/labs', { track: 'netplus', template: 'netplus-tiny' }, as({ origin: 'https://evil.example' }));
    assert.equal(crossSite.status, 403, 'a start from another site is refused');
    const forged = await api('POST', '/v1/portal/sign-in', { entitlement_token: `${link.body.portal_url.split('token=')[1]}x` }, { 'x-api-key': '' });
    assert.equal(forged.status, 401, 'a sign-in link is not an entitlement token');
    const tampered = await api('GET', `/v1/portal`, undefined, { cookie: `${cookie}x`, 'x-api-key': '' });
    assert.match(tampered.text, /id="sign-in"/, 'a tampered session is no session');
    const noStart = await api('POST', '/v1/portal/labs', { track: 'netplus', template: 'netplus-tiny' }, as());
    assert.equal(noStart.status, 403, `mallory holds no entitlement: ${noStart.text}`);
  });
});
