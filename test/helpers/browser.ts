import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium, headless; Playwright gives every launch a fresh temporary profile. */
export function launchChromium(): Promise<Browser> {
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
 * Collects what a page must not do: console errors, uncaught errors, failed requests and HTTP
 * errors. `allow` names responses the test provokes on purpose (a refused link, say).
 */
export function watchPage(page: Page, allow: (status: number, url: string) => boolean = () => false): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    // The browser logs a console error for each HTTP error response; those are judged below.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed request: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => void (r.status() >= 400 && !allow(r.status(), r.url()) && problems.push(`HTTP ${r.status()}: ${r.url()}`)));
  return problems;
}
