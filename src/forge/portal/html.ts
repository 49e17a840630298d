import { escapeHtml, jsonForScript } from '../access/html.js';
import type { PortalLab, PortalOverview } from './overview.js';
import { PORTAL_BASE } from './session.js';

/** The portal's CSP: this server's script and stylesheet only; the page posts with fetch (no forms). */
export const PORTAL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const FAVICON = `<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%230e7490'/%3E%3Cpath d='M8 2v12M3 5l10 6M3 11l10-6' stroke='%23e2e8f0' stroke-width='1.6'/%3E%3C/svg%3E">`;

/** `evidence` answers whichever archive the lab was packed as. */
const RESULT_FILES = ['score.json', 'evidence', 'verdict.sig', 'verdict.pub'] as const;

function head(title: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · FrostGate</title>${FAVICON}
<link rel="stylesheet" href="${PORTAL_BASE}/assets/portal.css">
<script type="module" src="${PORTAL_BASE}/assets/portal.js"></script>
</head>`;
}

const STATUS_TEXT: Record<PortalLab['status'], string> = {
  starting: 'Starting',
  running: 'Running',
  grading: 'Grading',
  graded: 'Graded',
  expired: 'Expired (not graded)',
  ended: 'Ended (not graded)',
  failed: 'Failed to start',
};

function labRow(lab: PortalLab): string {
  const id = escapeHtml(lab.scenario_id);
  const base = `${PORTAL_BASE}/labs/${id}`;
  const best = lab.score && lab.score.attempts > 1 ? ` <span class="muted">best of ${lab.score.attempts} attempts (attempt ${lab.score.attempt})</span>` : '';
  const score = lab.score ? `<strong>${lab.score.total}/${lab.score.max}</strong> (${Math.round(lab.score.percent)}%)${best}` : '—';
  const actions: string[] = [];
  if (lab.can_enter) actions.push(`<button type="button" class="enter primary" data-scenario="${id}">Open lab</button>`);
  if (lab.score) {
    actions.push(`<a class="certificate" href="${base}/certificate">Certificate</a>`);
    const files = RESULT_FILES.map((f) => `<a download href="${base}/results/${f}">${f}</a>`).join(' ');
    actions.push(`<span class="files">${files}</span>`);
  }
  return `<tr data-scenario="${id}" data-status="${lab.status}">
<td>${escapeHtml(lab.title)}<div class="muted">${escapeHtml(lab.track)} · ${id}</div></td>
<td class="status status-${lab.status}">${STATUS_TEXT[lab.status]}</td>
<td><time datetime="${escapeHtml(lab.created_at)}">${escapeHtml(lab.created_at.slice(0, 16).replace('T', ' '))} UTC</time></td>
<td class="score">${score}</td>
<td class="row-actions">${actions.join(' ')}</td></tr>`;
}

export function renderPortalPage(v: PortalOverview & { gradingAvailable: boolean }): string {
  const progress = v.progress
    .map(
      (p) => `<li class="track-progress" data-track="${escapeHtml(p.track)}"><h3>${escapeHtml(p.track)}</h3>
<div class="meter" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${p.percent}"><span class="fill w${Math.round(p.percent / 5) * 5}"></span></div>
<p><strong>${p.percent}%</strong> · ${p.graded} of ${p.labs} lab${p.labs === 1 ? '' : 's'} graded</p>
<ul class="best">${p.best.map((b) => `<li>${escapeHtml(b.title)}: ${b.percent === null ? 'not yet' : `${Math.round(b.percent)}%`}</li>`).join('')}</ul></li>`,
    )
    .join('');
  const catalog = v.catalog.tracks
    .map((t) => {
      const ent = t.entitlement
        ? `<span class="entitlement">${escapeHtml(t.entitlement.tier)} · ${t.entitlement.credits_left} credit${t.entitlement.credits_left === 1 ? '' : 's'} left · until ${escapeHtml(t.entitlement.expires_at.slice(0, 10))}</span>`
        : '<span class="entitlement none">no entitlement for this track</span>';
      const cards = t.templates
        .map((tpl) => {
          const refusal = tpl.allowed === false ? (tpl.refusals ?? []).map((r) => escapeHtml(r.detail)).join('; ') : '';
          return `<li class="card" data-template="${escapeHtml(tpl.id)}"><h4>${escapeHtml(tpl.title)}</h4>
<p class="muted">${escapeHtml(tpl.difficulty ?? 'any level')} · ${tpl.duration_minutes} min · ${tpl.devices} device${tpl.devices === 1 ? '' : 's'} · ${escapeHtml(tpl.tier)}</p>
<p>${escapeHtml(tpl.description)}</p>
${
  tpl.allowed === false
    ? `<p class="refused">${refusal || 'not allowed by your entitlement'}</p>`
    : `<button type="button" class="start primary" data-track="${escapeHtml(t.track)}" data-template="${escapeHtml(tpl.id)}">Start lab</button>`
}</li>`;
        })
        .join('');
      return `<section class="track" data-track="${escapeHtml(t.track)}"><h3>${escapeHtml(t.track)} ${ent}</h3><ul class="cards">${cards}</ul></section>`;
    })
    .join('');
  const labs =
    v.labs.length === 0
      ? '<p id="no-labs" class="muted">No labs yet: start one from the catalogue below.</p>'
      : `<table id="labs"><thead><tr><th>Lab</th><th>Status</th><th>Started</th><th>Score</th><th></th></tr></thead><tbody>${v.labs.map((l) => labRow(l)).join('')}</tbody></table>`;
  return `${head('My labs')}
<body class="portal">
<header class="bar"><h1>FrostGate labs</h1><span id="who">Signed in as <strong>${escapeHtml(v.subject)}</strong></span>
<button type="button" id="sign-out">Sign out</button></header>
<div id="notice" role="status" hidden></div>
<main>
<section id="progress"><h2>Progress</h2><ul class="tracks">${progress}</ul>${v.gradingAvailable ? '' : '<p class="muted">Scores are kept by the scoreboard, which this server does not run.</p>'}</section>
<section id="my-labs"><h2>My labs</h2>${labs}</section>
<section id="catalog"><h2>Catalogue</h2>${catalog}</section>
</main>
<script type="application/json" id="portal-data">${jsonForScript({ base: PORTAL_BASE })}</script>
</body></html>
`;
}

/** Why the sign-in page is shown: first visit, a refused sign-in link, or signed out. */
export interface SignInView {
  readonly heading: string;
  readonly message?: string;
  readonly reason?: string;
}

export function renderSignInPage(v: SignInView): string {
  return `${head('Sign in')}
<body class="portal sign-in"><main class="narrow" id="sign-in"${v.reason ? ` data-reason="${escapeHtml(v.reason)}"` : ''}>
<h1>${escapeHtml(v.heading)}</h1>
${v.message ? `<p class="message">${escapeHtml(v.message)}</p>` : ''}
<p>Open the <strong>sign-in link</strong> or any <strong>lab access link</strong> your training provider sent you: it signs this browser in.
Or sign in with your <strong>entitlement token</strong> (you received it with your purchase):</p>
<label for="entitlement-token">Entitlement token</label>
<textarea id="entitlement-token" rows="4" spellcheck="false" autocomplete="off"></textarea>
<button type="button" id="sign-in-button" class="primary">Sign in</button>
<p id="sign-in-error" role="alert" hidden></p>
</main>
<script type="application/json" id="portal-data">${jsonForScript({ base: PORTAL_BASE })}</script>
</body></html>
`;
}

export interface CertificateView {
  readonly subject: string;
  readonly title: string;
  readonly track: string;
  readonly scenarioId: string;
  readonly total: number;
  readonly max: number;
  readonly percent: number;
  readonly gradedAt: string;
  readonly keyId: string;
  readonly scoreSha256: string;
  readonly verified: { readonly ok: true } | { readonly ok: false; readonly reason: string };
  readonly criteria: ReadonlyArray<{ readonly description: string; readonly awarded: number; readonly points: number; readonly status: string }>;
  readonly evidenceName: string;
}

export function renderCertificatePage(v: CertificateView): string {
  const base = `${PORTAL_BASE}/labs/${escapeHtml(v.scenarioId)}`;
  return `${head(`${v.title}: result`)}
<body class="portal certificate"><main class="narrow" id="certificate">
<p class="muted"><a href="${PORTAL_BASE}">← My labs</a></p>
<h1>${escapeHtml(v.title)}</h1>
<p class="lead">completed by <strong id="cert-subject">${escapeHtml(v.subject)}</strong> (${escapeHtml(v.track)})</p>
<p class="big" id="cert-score">${v.total} / ${v.max} · ${Math.round(v.percent)}%</p>
<p>Graded <time datetime="${escapeHtml(v.gradedAt)}">${escapeHtml(v.gradedAt.replace('T', ' ').slice(0, 19))} UTC</time> · lab ${escapeHtml(v.scenarioId)}</p>
<p id="verdict-check" class="${v.verified.ok ? 'ok' : 'bad'}" data-verified="${v.verified.ok}">${
    v.verified.ok
      ? `Verdict signature verified: Ed25519 key ${escapeHtml(v.keyId)} signed this score (sha256 ${escapeHtml(v.scoreSha256.slice(0, 16))}…).`
      : `Verdict signature NOT verified: ${escapeHtml(v.verified.reason)}`
  }</p>
<table><thead><tr><th>Criterion</th><th>Points</th><th>Status</th></tr></thead><tbody>
${v.criteria.map((c) => `<tr><td>${escapeHtml(c.description)}</td><td>${c.awarded}/${c.points}</td><td>${escapeHtml(c.status)}</td></tr>`).join('')}
</tbody></table>
<p>Check it yourself: download <a download href="${base}/results/score.json">score.json</a>, <a download href="${base}/results/verdict.sig">verdict.sig</a>,
<a download href="${base}/results/verdict.pub">verdict.pub</a> and <a download href="${base}/results/${escapeHtml(v.evidenceName)}">${escapeHtml(v.evidenceName)}</a>, then run
<code>frostgate verify-verdict score.json ${escapeHtml(v.evidenceName)} verdict.sig --keys verdict-keys.json</code> (the scoreboard's published keys, <code>GET /v1/verdicts/keys</code>).</p>
</main>
<script type="application/json" id="portal-data">${jsonForScript({ base: PORTAL_BASE, certificate: { results: `${PORTAL_BASE}/labs/${v.scenarioId}/results` } })}</script>
</body></html>
`;
}
