import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Scenario } from '../../../src/forge/orchestrator/store.js';
import { makeAccessRig, netplusTemplate, type AccessRig, type RigOptions } from './helpers.js';

/** Screenshots of these tests (gitignored). */
const OUTPUT_DIR = path.resolve(import.meta.dirname, '../../../test-output/access');

/** Debian's Chromium, headless; Playwright gives every launch a fresh temporary profile. */
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

/** The visible text of a device's terminal (xterm's DOM renderer). */
function terminalText(page: Page, device: string): Promise<string> {
  return page.locator(`#term-${device} .xterm-rows`).innerText();
}

async function waitForTerminalText(page: Page, device: string, pattern: RegExp): Promise<string> {
  const end = Date.now() + 20_000;
  for (;;) {
    const text = await terminalText(page, device).catch(() => '');
    if (pattern.test(text)) return text;
    if (Date.now() > end) throw new Error(`terminal ${device} never showed ${pattern}; it shows:\n${text}`);
    await page.waitForTimeout(100);
  }
}

export function describeBrowser(
  name: string,
  opts: RigOptions,
  body: (ctx: { rig: () => AccessRig; lab: () => Scenario; browser: () => Browser }) => void,
): void {
  describe(name, () => {
    let rig: AccessRig;
    let lab: Scenario;
    let browser: Browser;
    before(async () => {
      mkdirSync(OUTPUT_DIR, { recursive: true });
      rig = await makeAccessRig(opts);
      lab = await rig.createLab(await netplusTemplate());
      browser = await launch();
    });
    after(async () => {
      await browser?.close();
      await rig?.close();
    });
    body({ rig: () => rig, lab: () => lab, browser: () => browser });
  });
}

describeBrowser('the lab page in a real browser (Chromium)', {}, ({ rig, lab, browser }) => {
  it('opens the access URL, cleans it, types `ip -br addr` in h1 and sees its address, switches to h2', async () => {
    const context = await browser().newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const consoleLines: string[] = [];
    page.on('console', (m) => void consoleLines.push(`${m.type()}: ${m.text()}`));
    const cspViolations = () => consoleLines.filter((l) => /Content Security Policy|Refused to/i.test(l));
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      const id = lab().scenario_id;
      const token = await rig().issue(id);
      await page.goto(`${rig().baseUrl}/v1/access/${id}?token=${token}`);
      assert.equal(page.url(), `${rig().baseUrl}/v1/access/${id}`, 'the token is gone from the URL');
      // The lab session, and the learner portal's session the link opens too (docs/portal.md).
      const cookies = Object.fromEntries((await context.cookies()).map((c) => [c.name, c]));
      assert.deepEqual(Object.keys(cookies).sort(), ['fg_access', 'fg_portal']);
      assert.equal(cookies.fg_access!.httpOnly, true);
      assert.equal(cookies.fg_access!.sameSite, 'Strict');
      assert.equal(cookies.fg_portal!.httpOnly, true);
      assert.equal(cookies.fg_portal!.path, '/v1/portal');
      assert.equal(await page.evaluate('document.cookie'), '', 'page scripts cannot read the token');

      const template = await netplusTemplate();
      assert.equal(await page.locator('#lab-title').innerText(), template.title);
      assert.equal(await page.locator('#tasks li').count(), template.tasks.length);
      assert.match(await page.locator('#time-left').innerText(), /^\d+:\d\d$/);
      assert.equal(await page.locator('#topology svg g.device').count(), 3);

      // The first device's terminal opens by itself; h1 opens on its tab.
      await page.locator('#term-r1[data-state="connected"]').waitFor({ timeout: 20_000 });
      await page.locator('#tab-h1').click();
      await page.locator('#term-h1[data-state="connected"]').waitFor({ timeout: 20_000 });
      await page.locator('#term-h1 .xterm-helper-textarea').focus();
      await page.keyboard.type('ip -br addr\n');
      await waitForTerminalText(page, 'h1', /10\.10\.1\.10\/24/);
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'lab-h1.png') });

      await page.locator('#tab-h2').click();
      assert.equal(await page.locator('#term-h1').isHidden(), true);
      await page.locator('#term-h2[data-state="connected"]').waitFor({ timeout: 20_000 });
      await page.locator('#term-h2 .xterm-helper-textarea').focus();
      await page.keyboard.type('ip -br addr\n');
      const h2 = await waitForTerminalText(page, 'h2', /10\.10\.2\.20\/24/);
      assert.ok(!h2.includes('10.10.1.10'), 'h2 shows its own interfaces');
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'lab-h2.png') });

      // Back to h1: the same shell, still showing what was typed there.
      await page.locator('#tab-h1').click();
      assert.match(await terminalText(page, 'h1'), /10\.10\.1\.10\/24/);

      // A reload (the learner presses F5) reattaches the same shells.
      await page.reload();
      await page.locator('#tab-h1').click();
      await page.locator('#term-h1[data-state="connected"]').waitFor({ timeout: 20_000 });
      await page.locator('#term-h1 .xterm-helper-textarea').focus();
      await page.keyboard.type('echo again-$((40+2))\n');
      const again = await waitForTerminalText(page, 'h1', /again-42/);
      assert.ok(!again.includes('previous shell was closed'), 'the same shell after a reload');

      assert.deepEqual(cspViolations(), [], 'no CSP violation: xterm styles carry the nonce');
      assert.deepEqual(pageErrors, []);
    } catch (err) {
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'failure.png') }).catch(() => undefined);
      throw new Error(`${(err as Error).message}\nbrowser console:\n${consoleLines.join('\n')}\npage errors: ${pageErrors.join('; ')}`, { cause: err });
    } finally {
      await context.close();
    }
  });

  it('an expired link shows a clear refusal page, not a terminal', async () => {
    const context = await browser().newContext();
    const page = await context.newPage();
    try {
      const id = lab().scenario_id;
      const expired = await rig().issue(id, { ttlS: -60 });
      const res = await page.goto(`${rig().baseUrl}/v1/access/${id}?token=${expired}`);
      assert.equal(res?.status(), 401);
      assert.equal(await page.locator('h1').innerText(), 'Your access link has expired');
      assert.match(await page.locator('main').innerText(), /ask for a new access link/);
      assert.equal(await page.locator('.xterm').count(), 0);
      assert.equal((await context.cookies()).length, 0, 'no cookie for a refused link');
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'refused-expired.png') });
    } finally {
      await context.close();
    }
  });
});

describeBrowser('submitting the lab for grading from the page', { grading: true }, ({ rig, lab, browser }) => {
  it('fixes both gateways in the terminals, submits, and shows the score with each criterion', async () => {
    const context = await browser().newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    try {
      const id = lab().scenario_id;
      await page.goto(`${rig().baseUrl}/v1/access/${id}?token=${await rig().issue(id)}`);
      for (const [device, gateway] of [
        ['h1', '10.10.1.1'],
        ['h2', '10.10.2.1'],
      ] as const) {
        await page.locator(`#tab-${device}`).click();
        await page.locator(`#term-${device}[data-state="connected"]`).waitFor({ timeout: 20_000 });
        await page.locator(`#term-${device} .xterm-helper-textarea`).focus();
        await page.keyboard.type(`ip route add default via ${gateway} && echo gw-$((1+1))-ok\n`);
        await waitForTerminalText(page, device, /gw-2-ok/);
      }
      assert.equal(await page.locator('#submit').isEnabled(), true);
      await page.locator('#submit').click();
      // A confirmation first; Cancel submits nothing.
      await page.locator('#confirm[open]').waitFor();
      await page.locator('#confirm-cancel').click();
      assert.equal(await page.locator('#confirm[open]').count(), 0);
      assert.equal((await rig().orchestrator.get(rig().tenantId, lab().scenario_id)).state, 'running');
      await page.locator('#submit').click();
      await page.locator('#confirm-ok').click();
      await page.locator('#result:not([hidden])').waitFor({ timeout: 60_000 });
      const score = await page.locator('#score').innerText();
      const m = /^Score: (\d+) \/ (\d+)$/.exec(score);
      assert.ok(m, score);
      assert.equal(Number(m[2]), 100);
      assert.ok(Number(m[1]) >= 60, `both gateway criteria count: ${score}`);
      for (const criterion of ['h1-gateway', 'h2-gateway']) {
        assert.match((await page.locator(`li[data-criterion="${criterion}"]`).getAttribute('class')) ?? '', /passed/, criterion);
      }
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'scored.png') });
      // The status API agrees with the page, and the scenario is scored.
      assert.equal((await rig().orchestrator.get(rig().tenantId, id)).state, 'scored');

      // What was typed is on disk as evidence, written before grading packed it.
      const { readdir, readFile } = await import('node:fs/promises');
      const { parseAsciicast, recordingsDir } = await import('../../../src/forge/access/recording.js');
      const dir = recordingsDir(rig().storageDir, id);
      const typed = (await Promise.all((await readdir(dir)).map(async (f) => parseAsciicast(await readFile(path.join(dir, f), 'utf8')))))
        .flatMap((c) => c.events.filter((e) => e[1] === 'i').map((e) => e[2]))
        .join('');
      assert.ok(typed.includes('ip route add default via 10.10.1.1') && typed.includes('ip route add default via 10.10.2.1'), typed);

      // ...and the grader packed those recordings into the signed evidence archive.
      const { readResults } = await import('../../../src/forge/scoring/results.js');
      const { readEvidenceArchive } = await import('../../../src/forge/scoring/evidence-archive.js');
      const { FilesystemStorage } = await import('../../../src/platform/storage/filesystem.js');
      const results = await readResults(new FilesystemStorage(rig().storageDir), id);
      assert.ok(results, 'results stored');
      const packed = (await readEvidenceArchive(results.evidence)).filter((e) => e.name.startsWith('recordings/') && e.name.endsWith('.cast'));
      assert.ok(packed.length >= 2, `recordings in the evidence: ${packed.map((e) => e.name).join(', ')}`);
      const packedInput = packed
        .flatMap((e) =>
          parseAsciicast(Buffer.from(e.bytes).toString('utf8'))
            .events.filter((ev) => ev[1] === 'i')
            .map((ev) => ev[2]),
        )
        .join('');
      assert.ok(
        packedInput.includes('ip route add default via 10.10.1.1') && packedInput.includes('ip route add default via 10.10.2.1'),
        'what was typed before Submit is in the evidence',
      );
    } finally {
      await context.close();
    }
  });

  it('the page keeps working after its short link expired (the session lives with the lab); an ended lab shows the refusal', async () => {
    const context = await browser().newContext();
    const page = await context.newPage();
    try {
      const id = lab().scenario_id;
      const linkEnds = Date.now() + 3000;
      await page.goto(`${rig().baseUrl}/v1/access/${id}?token=${await rig().issue(id, { ttlS: 3 })}`);
      await page.locator('#term-r1[data-state="connected"]').waitFor({ timeout: 20_000 });
      await page.waitForFunction((end) => Date.now() > end + 1000, linkEnds);
      await page.reload();
      await page.locator('#term-r1[data-state="connected"]').waitFor({ timeout: 20_000 });
      assert.equal(await page.locator('#refusal').count(), 0, 'no refusal once the link expired');
      await rig().orchestrator.destroy(rig().tenantId, id);
      await page.reload();
      await page.locator('#refusal').waitFor({ timeout: 20_000 });
      assert.equal(await page.locator('h1').innerText(), 'This lab has ended');
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'refused-after-end.png') });
    } finally {
      await context.close();
    }
  });
});
