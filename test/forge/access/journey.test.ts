import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parse } from 'yaml';
import { verifyVerdict } from '../../../src/forge/scoring/verdict.js';
import { DEFAULT_TEMPLATES_DIR } from '../../../src/forge/module.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { forgeTestEnv, type ForgeTestEnv } from '../spawn/helpers.js';

const OUTPUT_DIR = path.resolve(import.meta.dirname, '../../../test-output/journey');

interface Solution {
  readonly answers?: Record<string, unknown>;
}
interface TemplateDoc {
  readonly id: string;
  readonly title: string;
  readonly track: string;
  readonly successCriteria: Array<{ id: string; check: { type: string }; hints?: Array<{ penalty?: number }> }>;
}

/** Fills the page's answer fields and quizzes with the reference solution's answers. */
async function answerLikeTheSolution(page: Page, template: TemplateDoc, solution: Solution): Promise<string[]> {
  const answered: string[] = [];
  for (const c of template.successCriteria) {
    const given = solution.answers?.[c.id];
    if (given === undefined) continue;
    if (c.check.type === 'answer') await page.locator(`input[data-answer="${c.id}"]`).fill(typeof given === 'string' ? given : JSON.stringify(given));
    if (c.check.type === 'quiz') {
      for (const [qid, value] of Object.entries(given as Record<string, unknown>)) {
        if (Array.isArray(value)) {
          for (const i of value) await page.locator(`input[data-quiz="${c.id}"][data-qid="${qid}"][value="${i}"]`).check();
        } else {
          for (const [left, right] of Object.entries(value as Record<string, string>))
            await page.locator(`select[data-quiz="${c.id}"][data-qid="${qid}"][data-left="${left}"]`).selectOption(right);
        }
      }
    }
    answered.push(c.id);
  }
  return answered;
}

/**
 * A learner's whole journey through every track, in Debian's Chromium, on one server running every
 * role with the shipped templates: an entitlement per track (fake_charge receipts), the catalogue,
 * each of the six labs spawned by name through the spawn API and opened from its access_url, the
 * answers and quiz filled in on the page, a hint unlocked, the lab extended, then ended (graded,
 * destroyed, the learner's only lab slot free for the next), and the result files downloaded with
 * the lab session and verified. No console error, no failed request; a screenshot of each page.
 */
describe('the learner journey through every track in the browser', () => {
  let fx: ForgeTestEnv;
  let t: TestApp;
  let browser: Browser;
  let baseUrl: string;
  let extraDir: string;
  const learner = 'journey-learner';

  before(async () => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    extraDir = mkdtempSync(path.join(tmpdir(), 'fg-journey-'));
    fx = forgeTestEnv({
      FG_TEMPLATES_DIR: DEFAULT_TEMPLATES_DIR,
      FG_STORAGE_DIR: path.join(extraDir, 'storage'),
      // One lab at a time: each next spawn works only because End lab freed the slot at once.
      FG_QUOTA_MAX_CONCURRENT_PER_SUBJECT: '1',
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
    await fx?.cleanup();
    if (extraDir) rmSync(extraDir, { recursive: true, force: true });
  });

  const api = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}${url}`, {
      method,
      headers: { 'x-api-key': t.adminKey, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test reads whatever JSON the server answered
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('entitlements, catalogue, and each of the six labs from spawn to verified results', async () => {
    for (const track of ['netplus', 'ccna', 'cissp']) {
      const r = await api('POST', '/v1/receipts', { track, subject: learner, credits: 2 });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const catalog = await api('GET', `/v1/catalog?subject=${learner}`);
    assert.equal(catalog.status, 200);
    const offered = (catalog.body.tracks as Array<{ track: string; templates: Array<{ id: string; allowed: boolean }> }>).flatMap((tr) =>
      tr.templates.map((x) => ({ ...x, track: tr.track })),
    );
    assert.equal(offered.length, 6, 'six labs in the catalogue');
    assert.ok(
      offered.every((x) => x.allowed),
      'the pro entitlements allow every lab',
    );

    for (const [n, entry] of offered.entries()) {
      const file = readdirSync(DEFAULT_TEMPLATES_DIR).find((f) => f === `${entry.id}.yaml`)!;
      const template = parse(readFileSync(path.join(DEFAULT_TEMPLATES_DIR, file), 'utf8')) as TemplateDoc;
      const solution = parse(readFileSync(path.join(DEFAULT_TEMPLATES_DIR, 'solutions', file), 'utf8')) as Solution;
      const spawned = await api('POST', '/v1/spawn', { track: entry.track, template: entry.id, subject: learner, request_id: `journey-${n}` });
      assert.equal(spawned.status, 201, `${entry.id}: ${JSON.stringify(spawned.body)}`);
      const id = spawned.body.scenario_id as string;

      const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => void (m.type() === 'error' && problems.push(`console: ${m.text()}`)));
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`failed request: ${r.url()} ${r.failure()?.errorText}`));
      page.on('response', (r) => void (r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`)));
      try {
        await page.goto(spawned.body.access_url as string);
        assert.equal(await page.locator('#lab-title').innerText(), template.title);
        await page.locator('.term[data-state="connected"]').first().waitFor({ timeout: 30_000 });

        // Answers and quizzes, as the reference solution gives them.
        const answered = await answerLikeTheSolution(page, template, solution);

        // A criterion's hint: its penalty is stated, a confirmation, then the text.
        const hinted = template.successCriteria.find((c) => (c.hints ?? []).length > 0);
        if (hinted) {
          const item = page.locator(`li[data-hint-criterion="${hinted.id}"][data-hint-index="0"]`);
          assert.match(await item.locator('button.unlock').innerText(), new RegExp(`costs ${hinted.hints![0]!.penalty ?? 0} point`));
          await item.locator('button.unlock').click();
          await page.locator('#confirm-ok').click();
          await item.locator('.hint-text:not([hidden])').waitFor();
        }

        // Extend: 15 more minutes, on the page and in the scenario.
        const before = Date.parse((await api('GET', `/v1/scenarios/${id}`)).body.expires_at as string);
        await page.locator('#extend').click();
        await page.locator('#notice', { hasText: 'Extended' }).waitFor();
        const extended = Date.parse((await api('GET', `/v1/scenarios/${id}`)).body.expires_at as string);
        assert.ok(extended >= before + 14 * 60_000, `${entry.id}: extended by 15 minutes`);
        await page.screenshot({ path: path.join(OUTPUT_DIR, `${n + 1}-${entry.id}-lab.png`), fullPage: true });

        // End lab: graded with the answers, the devices removed.
        await page.locator('#end-lab').click();
        await page.locator('#confirm-ok').click();
        await page.locator('#notice', { hasText: 'The lab has ended' }).waitFor({ timeout: 120_000 });
        await page.locator('#result:not([hidden])').waitFor();
        assert.equal((await api('GET', `/v1/scenarios/${id}`)).body.state, 'destroyed');
        for (const c of answered)
          assert.match(
            (await page.locator(`li.criterion[data-criterion="${c}"]`).getAttribute('class')) ?? '',
            /passed/,
            `${entry.id}: ${c} answered on the page passes`,
          );
        await page.screenshot({ path: path.join(OUTPUT_DIR, `${n + 1}-${entry.id}-ended.png`), fullPage: true });

        // The results, downloaded through the page's links with the lab session, verify.
        const files: Record<string, Buffer> = {};
        for (const link of await page.locator('#downloads a').all()) {
          const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
          files[(await link.getAttribute('data-file'))!] = readFileSync(await download.path());
        }
        const evidenceName = Object.keys(files).find((f) => f.startsWith('evidence.'))!;
        const check = verifyVerdict({
          scoreBytes: files['score.json']!,
          evidenceBytes: files[evidenceName]!,
          sigBytes: files['verdict.sig']!,
          pubBytes: files['verdict.pub']!,
        });
        assert.ok(check.ok, `${entry.id}: ${JSON.stringify(check)}`);
        const score = JSON.parse(files['score.json']!.toString('utf8')) as { criteria: Array<{ id: string; hints_used: number[] }>; scenario_id: string };
        assert.equal(score.scenario_id, id);
        if (hinted) assert.deepEqual(score.criteria.find((c) => c.id === hinted.id)?.hints_used, [0], `${entry.id}: the unlocked hint is in score.json`);
        assert.deepEqual(problems, [], `${entry.id}: no console error or failed request`);
      } catch (err) {
        await page.screenshot({ path: path.join(OUTPUT_DIR, `${n + 1}-${entry.id}-failure.png`), fullPage: true }).catch(() => undefined);
        throw new Error(`${entry.id}: ${(err as Error).message}\n${problems.join('\n')}`, { cause: err });
      } finally {
        await context.close();
      }
    }
  });
});
