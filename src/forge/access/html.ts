import { createHash } from 'node:crypto';
import type { PageHint, PageQuestion } from './questions.js';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON inside a <script type="application/json"> block: nothing in it can close the element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * The lab page's CSP: only this server's scripts, styles and sockets. xterm.js adds <style>
 * elements at run time; the page script gives each the per-response nonce, so no inline style
 * anyone else injects is applied.
 */
export function labPageCsp(styleNonce: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${styleNonce}'`,
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const REFUSAL_STYLE = `body{font:16px/1.5 system-ui,sans-serif;background:#0f172a;color:#e2e8f0;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{max-width:36rem;padding:2rem;border:1px solid #334155;border-radius:12px;background:#1e293b}
h1{font-size:1.4rem;margin:0 0 .5rem}p{margin:.5rem 0}.code{color:#94a3b8;font-size:.85rem}a{color:#22d3ee}`;
const REFUSAL_STYLE_HASH = createHash('sha256').update(REFUSAL_STYLE).digest('base64');

/** The refusal page's CSP: no script at all, one inline style allowed by its hash. */
export const REFUSAL_CSP = `default-src 'none'; style-src 'sha256-${REFUSAL_STYLE_HASH}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/**
 * The pages' icon, inline: without one the browser asks for /favicon.ico, which only key holders
 * could be answered on (every route but a short public list needs a key), and logs a 404.
 */
const FAVICON = `<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%230e7490'/%3E%3Cpath d='M8 2v12M3 5l10 6M3 11l10-6' stroke='%23e2e8f0' stroke-width='1.6'/%3E%3C/svg%3E">`;

/** Token and lab messages are lower-case clauses; the page shows them as a sentence. */
function sentence(text: string): string {
  const s = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

export interface RefusalView {
  readonly heading: string;
  readonly message: string;
  /** Stable machine-readable reason, shown small and used by tests. */
  readonly reason: string;
  readonly requestId: string;
  /** Where to go from here (the learner portal), when there is somewhere. */
  readonly next?: { readonly href: string; readonly text: string };
}

/** A clear page for a learner whose link is expired, wrong, already used, or whose lab is gone. */
export function renderRefusalPage(v: RefusalView): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(v.heading)} · FrostGate</title>${FAVICON}<style>${REFUSAL_STYLE}</style></head>
<body><main id="refusal" data-reason="${escapeHtml(v.reason)}">
<h1>${escapeHtml(v.heading)}</h1>
<p>${escapeHtml(sentence(v.message))}</p>
${v.next ? `<p><a id="next" href="${escapeHtml(v.next.href)}">${escapeHtml(v.next.text)}</a></p>` : ''}
<p class="code">Reason: ${escapeHtml(v.reason)} · request ${escapeHtml(v.requestId)}</p>
</main></body></html>
`;
}

export interface PageDevice {
  readonly name: string;
  readonly kind: 'host' | 'router';
  readonly addresses: ReadonlyArray<{ readonly interface: string; readonly network: string; readonly address: string }>;
}

export interface LabPageView {
  readonly scenarioId: string;
  readonly title: string;
  readonly track: string;
  readonly description: string | undefined;
  readonly tasks: readonly string[];
  readonly devices: readonly PageDevice[];
  readonly networks: ReadonlyArray<{ readonly name: string; readonly cidr: string | undefined }>;
  readonly expiresAt: string;
  readonly accessExpiresAt: string;
  readonly extendMinutes: number;
  readonly gradingAvailable: boolean;
  readonly basePath: string;
  readonly assetBase: string;
  readonly styleNonce: string;
  readonly topologySvg: string;
  readonly questions: readonly PageQuestion[];
  readonly hints: readonly PageHint[];
  /** The End lab button (the orchestrator runs in this process). */
  readonly canEnd: boolean;
  /** What the lab may use (describeLimits), when its template is known. */
  readonly limits?: string | undefined;
}

export function renderLabPage(v: LabPageView): string {
  const data = {
    scenario_id: v.scenarioId,
    base: v.basePath,
    devices: v.devices.map((d) => d.name),
    expires_at: v.expiresAt,
    access_expires_at: v.accessExpiresAt,
    extend_minutes: v.extendMinutes,
    grading: v.gradingAvailable,
    questions: v.questions,
    hints: v.hints,
  };
  const tabs = v.devices
    .map(
      (d, i) =>
        `<button type="button" role="tab" class="tab" id="tab-${escapeHtml(d.name)}" data-device="${escapeHtml(d.name)}" ` +
        `aria-selected="${i === 0}" aria-controls="term-${escapeHtml(d.name)}">${escapeHtml(d.name)}<span class="kind">${d.kind}</span></button>`,
    )
    .join('');
  const panes = v.devices
    .map(
      (d, i) =>
        `<div role="tabpanel" class="term" id="term-${escapeHtml(d.name)}" data-device="${escapeHtml(d.name)}" ` +
        `aria-labelledby="tab-${escapeHtml(d.name)}"${i === 0 ? '' : ' hidden'}></div>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(v.title)} · FrostGate lab</title>${FAVICON}
<link rel="stylesheet" href="${v.assetBase}/xterm.css"><link rel="stylesheet" href="${v.assetBase}/lab.css">
<script type="application/json" id="lab-data" nonce="${v.styleNonce}">${jsonForScript(data)}</script>
<script type="module" src="${v.assetBase}/lab.js"></script>
</head><body>
<header class="bar">
  <div><h1 id="lab-title">${escapeHtml(v.title)}</h1><span class="track">${escapeHtml(v.track)}</span> <a class="my-labs" href="/v1/portal">My labs</a></div>
  <div class="clock"><span>Time left</span> <strong id="time-left" data-expires-at="${escapeHtml(v.expiresAt)}">…</strong>
  ${v.extendMinutes > 0 ? `<button type="button" id="extend">Extend ${v.extendMinutes} min</button>` : ''}</div>
  <div class="actions">
  <button type="button" id="submit" class="primary"${v.gradingAvailable ? '' : ' disabled title="grading is not available on this server"'}>Submit for grading</button>
  ${v.canEnd ? '<button type="button" id="end-lab" class="danger">End lab</button>' : ''}
  </div>
</header>
<dialog id="confirm" aria-labelledby="confirm-title"><h2 id="confirm-title"></h2><p id="confirm-text"></p>
<div class="dialog-buttons"><button type="button" id="confirm-cancel">Cancel</button><button type="button" id="confirm-ok" class="primary">Confirm</button></div></dialog>
<div id="notice" role="status" hidden></div>
<main class="layout">
  <aside class="side">
    <section id="result" hidden><h2>Result</h2><p id="score"></p><ul id="criteria"></ul><h3>Download your results</h3><ul id="downloads"></ul></section>
    ${v.description ? `<p class="description">${escapeHtml(v.description)}</p>` : ''}
    <h2>Tasks</h2><ol id="tasks">${v.tasks.map((t) => `<li>${escapeHtml(t)}</li>`).join('')}</ol>
    ${v.questions.length > 0 ? '<h2>Answers</h2><div id="answers"></div>' : ''}
    ${v.hints.length > 0 ? '<h2>Hints</h2><ul id="hints"></ul>' : ''}
    <h2>Topology</h2><figure id="topology">${v.topologySvg}</figure>
    ${v.limits ? `<h2>Limits</h2><p id="limits">${escapeHtml(v.limits)}</p>` : ''}
  </aside>
  <section class="terminals">
    <div role="tablist" id="tabs">${tabs}</div>
    <div id="idle-warning" role="alert" hidden></div>
    ${panes}
  </section>
</main>
</body></html>
`;
}
