// Building blocks of the console's views, and the smaller views (blocks, keys, tenants, labs,
// scores, audit, sessions). Text goes in as text nodes only: nothing from the API is parsed as HTML.
import { ApiError, api, query } from './api.js';

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

/** The status line: progress of long operations, and the outcome of the last action. */
export function status(text, kind = 'info') {
  const el = document.getElementById('status');
  el.className = kind;
  el.textContent = text;
}

export function errorText(err) {
  if (err instanceof ApiError) {
    const p = err.problem;
    return `${p.title || 'Refused'} (${err.status}${p.code ? ` ${p.code}` : ''}${p.reason ? `, ${p.reason}` : ''}): ${p.detail || ''}`;
  }
  return String(err.message || err);
}

/** Runs an action with its progress shown; errors go to the status line, never the console. */
export async function act(label, fn) {
  status(`${label}…`, 'busy');
  try {
    const result = await fn();
    status(`${label}: done.`, 'ok');
    return result;
  } catch (err) {
    status(`${label}: ${errorText(err)}`, 'error');
    return undefined;
  }
}

export function table(columns, rows, empty = 'Nothing here.') {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((c) => h('th', { scope: 'col' }, c.label)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((r) =>
        h(
          'tr',
          {},
          columns.map((c) => h('td', {}, c.cell(r))),
        ),
      ),
    ),
  );
}

/** A client-side pager for lists the API returns whole (keys, sessions, tenants). */
export function paged(columns, rows, pageSize = 25) {
  const holder = h('div');
  let page = 0;
  const draw = () => {
    const pages = Math.max(1, Math.ceil(rows.length / pageSize));
    holder.replaceChildren(
      table(columns, rows.slice(page * pageSize, (page + 1) * pageSize)),
      rows.length > pageSize
        ? h(
            'p',
            { class: 'pager' },
            h('button', { type: 'button', disabled: page === 0, onclick: () => ((page -= 1), draw()) }, '← Previous'),
            ` Page ${page + 1} of ${pages} (${rows.length}) `,
            h('button', { type: 'button', disabled: page + 1 >= pages, onclick: () => ((page += 1), draw()) }, 'Next →'),
          )
        : '',
    );
  };
  draw();
  return holder;
}

export const json = (value) => h('pre', { class: 'json' }, JSON.stringify(value, null, 2));

export async function blocksView(main) {
  const { decisions } = await api('GET', '/decisions/active');
  const until = (d) => {
    const block = d.mitigations.find((m) => m.action === 'block_ip' && m.applied);
    return block ? when(new Date(new Date(d.occurred_at).getTime() + block.duration_s * 1000).toISOString()) : '—';
  };
  // Early removal: the IP's blocks end now (bouncers get it in their stream's deleted list); the
  // reason goes to the audit log.
  const remove = (d, form) => {
    const ip = d.entity.slice('ip:'.length);
    const reason = new FormData(form).get('reason');
    return act(`Removing the block on ${ip} (bouncers drop it at their next pull)`, async () => {
      await api('DELETE', `/decisions/active/${encodeURIComponent(ip)}`, { reason });
      await blocksView(main);
    });
  };
  const removeForm = (d) =>
    d.entity.startsWith('ip:')
      ? h(
          'form',
          {
            class: 'inline',
            'data-remove': d.entity,
            onsubmit: (e) => {
              e.preventDefault();
              void remove(d, e.target);
            },
          },
          h('input', {
            name: 'reason',
            required: true,
            minlength: 3,
            maxlength: 500,
            placeholder: 'reason (audited)',
            'aria-label': `Why remove the block on ${d.entity}`,
          }),
          h('button', { type: 'submit' }, 'Remove block'),
        )
      : '';
  main.replaceChildren(
    h('h1', {}, 'Active blocks'),
    h('p', {}, `${decisions.length} block(s) in force; bouncers pull these.`),
    paged(
      [
        { label: 'Entity', cell: (d) => d.entity },
        { label: 'Level', cell: (d) => d.threat_level },
        { label: 'Rules', cell: (d) => d.rules_triggered.join(', ') },
        { label: 'Until', cell: until },
        { label: 'Decided', cell: (d) => when(d.created_at) },
        { label: 'Decision', cell: (d) => h('a', { href: `#/decision/${d.decision_id}` }, 'details') },
        { label: 'Early removal', cell: removeForm },
      ],
      decisions,
    ),
  );
}

const SCOPES = [
  'defend:write',
  'ingest:write',
  'decisions:read',
  'decisions:write',
  'bouncer:read',
  'governance:write',
  'governance:approve',
  'keys:admin',
  'forge:spawn',
  'forge:operate',
  'admin',
];

export async function keysView(main) {
  const { keys } = await api('GET', '/keys');
  const shown = h('div', { id: 'new-key' });
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: (e) => {
        e.preventDefault();
        const data = new FormData(e.target);
        const scopes = data.getAll('scope');
        act('Creating a key', async () => {
          const created = await api('POST', '/keys', {
            name: data.get('name'),
            scopes,
            ...(data.get('expires_in') ? { expires_in: data.get('expires_in') } : {}),
          });
          await keysView(main);
          document
            .getElementById('new-key')
            .replaceChildren(
              h(
                'div',
                { class: 'secret', role: 'alert' },
                h('strong', {}, `Key ${created.id} — shown once, store it now:`),
                h('code', { id: 'new-key-secret' }, created.key),
              ),
            );
        });
      },
    },
    h('h2', {}, 'Create a key'),
    h('label', {}, 'Name ', h('input', { name: 'name', required: true, maxlength: 200, id: 'key-name' })),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Scopes'),
      SCOPES.map((s) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'scope', value: s }), s)),
    ),
    h('label', {}, 'Expires in ', h('input', { name: 'expires_in', placeholder: 'e.g. 30d (empty: never)' })),
    h('button', { type: 'submit' }, 'Create key'),
  );
  const revoke = (k) =>
    act(`Revoking ${k.id}`, async () => {
      await api('DELETE', `/keys/${k.id}`);
      await keysView(main);
    });
  main.replaceChildren(
    h('h1', {}, 'API keys'),
    shown,
    paged(
      [
        { label: 'Id', cell: (k) => k.id },
        { label: 'Name', cell: (k) => k.name },
        { label: 'Owner', cell: (k) => k.owner },
        { label: 'Scopes', cell: (k) => k.scopes.join(' ') },
        { label: 'Created', cell: (k) => when(k.created_at) },
        { label: 'State', cell: (k) => (k.revoked_at ? `revoked ${when(k.revoked_at)}` : k.expires_at ? `expires ${when(k.expires_at)}` : 'active') },
        { label: '', cell: (k) => (k.revoked_at ? '' : h('button', { type: 'button', 'data-revoke': k.id, onclick: () => revoke(k) }, 'Revoke')) },
      ],
      keys,
    ),
    form,
  );
}

export async function tenantsView(main) {
  const { tenants } = await api('GET', '/tenants');
  main.replaceChildren(
    h('h1', {}, 'Tenants'),
    paged(
      [
        { label: 'Id', cell: (t) => t.id },
        { label: 'Name', cell: (t) => t.name },
        { label: 'Created', cell: (t) => when(t.created_at) },
        { label: 'State', cell: (t) => (t.disabled_at ? `disabled ${when(t.disabled_at)}` : 'active') },
      ],
      tenants,
    ),
    h(
      'form',
      {
        class: 'card',
        onsubmit: (e) => {
          e.preventDefault();
          const data = new FormData(e.target);
          act(`Creating tenant ${data.get('id')}`, async () => {
            await api('POST', '/tenants', { id: data.get('id'), name: data.get('name') });
            await tenantsView(main);
          });
        },
      },
      h('h2', {}, 'Create a tenant (platform administrators)'),
      h('label', {}, 'Id ', h('input', { name: 'id', required: true, pattern: '[a-z0-9][a-z0-9-]{1,62}' })),
      h('label', {}, 'Name ', h('input', { name: 'name' })),
      h('button', { type: 'submit' }, 'Create tenant'),
    ),
  );
}

export async function labsView(main) {
  const { scenarios } = await api('GET', '/v1/scenarios');
  const left = (s) => {
    const ms = new Date(s.expires_at).getTime() - Date.now();
    return ms <= 0 ? 'expired' : `${Math.floor(ms / 60000)} min`;
  };
  const extend = (s) =>
    act(`Extending ${s.scenario_id}`, async () => {
      await api('POST', `/v1/scenarios/${s.scenario_id}/extend`, { minutes: 30 });
      await labsView(main);
    });
  const destroy = (s) =>
    act(`Destroying ${s.scenario_id}`, async () => {
      if (!confirm(`Destroy lab ${s.scenario_id}? The learner loses it.`)) throw new Error('cancelled');
      await api('DELETE', `/v1/scenarios/${s.scenario_id}`);
      await labsView(main);
    });
  main.replaceChildren(
    h('h1', {}, 'Labs'),
    paged(
      [
        { label: 'Scenario', cell: (s) => s.scenario_id },
        { label: 'Template', cell: (s) => s.template_id },
        { label: 'Subject', cell: (s) => s.subject },
        { label: 'State', cell: (s) => s.state },
        { label: 'Time left', cell: left },
        {
          label: '',
          cell: (s) => [
            h('button', { type: 'button', onclick: () => extend(s) }, 'Extend 30 min'),
            ' ',
            h('button', { type: 'button', onclick: () => destroy(s) }, 'Destroy'),
          ],
        },
      ],
      scenarios,
      'No lab is running.',
    ),
  );
}

export async function scoresView(main, params) {
  const track = params.get('track') || 'netplus';
  const data = await api('GET', `/v1/scores${query({ track })}`);
  const board = data.leaderboards.find((l) => l.track === track)?.entries ?? [];
  const result = h('div', { id: 'score-result' });
  main.replaceChildren(
    h('h1', {}, 'Scores and verdicts'),
    h(
      'form',
      { class: 'filters', onsubmit: (e) => (e.preventDefault(), (location.hash = `#/scores?track=${new FormData(e.target).get('track')}`)) },
      h(
        'label',
        {},
        'Track ',
        h(
          'select',
          { name: 'track' },
          ['netplus', 'ccna', 'cissp'].map((t) => h('option', { value: t, selected: t === track }, t)),
        ),
      ),
      h('button', { type: 'submit' }, 'Show'),
    ),
    paged(
      [
        { label: 'Rank', cell: (e) => e.rank },
        { label: 'Subject', cell: (e) => e.subject },
        { label: 'Best', cell: (e) => `${e.best_percent}% (${e.best_total})` },
        { label: 'Attempts', cell: (e) => e.attempts },
        { label: 'Last graded', cell: (e) => when(e.last_graded_at) },
      ],
      board,
      'No scores on this track yet.',
    ),
    h(
      'form',
      {
        class: 'card',
        onsubmit: (e) => {
          e.preventDefault();
          const id = new FormData(e.target).get('scenario_id');
          act(`Reading the score of ${id}`, async () => result.replaceChildren(json(await api('GET', `/v1/scores/${encodeURIComponent(id)}`))));
        },
      },
      h('h2', {}, "One scenario's score and verdict"),
      h('label', {}, 'Scenario id ', h('input', { name: 'scenario_id', required: true })),
      h('button', { type: 'submit' }, 'Show'),
      result,
    ),
    h('p', { class: 'note' }, 'Verdicts verify offline, without this server: frostgate verify-verdict <results directory>.'),
  );
}

export async function auditView(main, params) {
  const cp = await api('GET', '/ledger/checkpoint?log=audit&fresh=true');
  const size = cp.tree_size;
  const pageSize = 50;
  const end = Math.min(size, Number(params.get('end') || size));
  const start = Math.max(0, end - pageSize);
  const { entries } = size > 0 ? await api('GET', `/ledger/entries${query({ log: 'audit', start, end })}`) : { entries: [] };
  main.replaceChildren(
    h('h1', {}, 'Audit trail'),
    h(
      'p',
      { class: 'card', id: 'checkpoint-status' },
      `Latest signed checkpoint: ${size} entries, root ${cp.root_hash}, signed ${when(cp.created_at)} by key ${cp.key_id}.`,
    ),
    table(
      [
        { label: '#', cell: (e) => e.index },
        { label: 'At', cell: (e) => when(e.record.at) },
        { label: 'Action', cell: (e) => e.record.action },
        { label: 'Actor', cell: (e) => e.record.actor },
        { label: 'Target', cell: (e) => e.record.target ?? '' },
        { label: 'Reason', cell: (e) => e.record.reason ?? '' },
      ],
      entries.slice().reverse(),
      'The audit log is empty.',
    ),
    h(
      'p',
      { class: 'pager' },
      h('a', { href: end < size ? `#/audit?end=${Math.min(size, end + pageSize)}` : undefined, 'aria-disabled': end >= size }, '← Newer'),
      ` Entries ${start}–${Math.max(start, end - 1)} of ${size} `,
      h('a', { href: start > 0 ? `#/audit?end=${start}` : undefined, 'aria-disabled': start <= 0 }, 'Older →'),
    ),
  );
}

export async function sessionsView(main, _params, me) {
  const { sessions, scope } = await api('GET', '/console/sessions');
  const revoke = (s) =>
    act(`Revoking session ${s.id}`, async () => {
      await api('DELETE', `/console/sessions/${s.id}`);
      await sessionsView(main, _params, me);
    });
  main.replaceChildren(
    h('h1', {}, 'Console sessions'),
    h('p', {}, scope === 'tenant' ? 'Every open session of this tenant (you hold admin).' : 'Your open sessions.'),
    paged(
      [
        { label: 'Person', cell: (s) => `${s.name} (${s.subject})` },
        { label: 'Signed in', cell: (s) => when(s.created_at) },
        { label: 'Last seen', cell: (s) => when(s.last_seen_at) },
        { label: 'Ends', cell: (s) => when(s.expires_at) },
        { label: 'From', cell: (s) => `${s.ip} ${s.user_agent.slice(0, 40)}` },
        { label: '', cell: (s) => (s.id === me.session_id ? 'this session' : h('button', { type: 'button', onclick: () => revoke(s) }, 'Revoke')) },
      ],
      sessions,
    ),
  );
}
