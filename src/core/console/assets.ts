import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ConsoleAsset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web/console');
const JS = 'text/javascript; charset=utf-8';
/** Every file the page may load, by name: nothing else under web/ is reachable. */
const FILES: Record<string, string> = {
  'console.js': JS,
  'api.js': JS,
  'views.js': JS,
  'governance.js': JS,
  'decisions.js': JS,
  'merkle.js': JS,
  'console.css': 'text/css; charset=utf-8',
};

/** Scripts and styles of this server only; no inline script, no CDN. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** The console's files, read once at startup. */
export async function loadConsoleAssets(): Promise<ReadonlyMap<string, ConsoleAsset>> {
  const assets = new Map<string, ConsoleAsset>();
  for (const [name, contentType] of Object.entries(FILES)) {
    const body = await readFile(path.join(WEB_DIR, name));
    assets.set(name, { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

/** The one page; console.js draws each view into <main> from the hash (#/decisions, #/governance, …). */
export function consolePage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FrostGate console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/console.css">
<script type="module" src="/console/assets/console.js"></script>
</head>
<body>
<header>
  <strong class="brand">FrostGate</strong>
  <nav id="nav" aria-label="Console">
    <a href="#/decisions">Decisions</a>
    <a href="#/blocks">Active blocks</a>
    <a href="#/governance">Governance</a>
    <a href="#/keys">Keys</a>
    <a href="#/tenants">Tenants</a>
    <a href="#/labs">Labs</a>
    <a href="#/scores">Scores</a>
    <a href="#/audit">Audit</a>
    <a href="#/sessions">Sessions</a>
  </nav>
  <span id="who" class="who"></span>
  <button id="logout" type="button">Sign out</button>
</header>
<div id="status" role="status" aria-live="polite"></div>
<main id="view"><p>Loading…</p></main>
</body>
</html>`;
}
