// Decisions: a filtered, paged list, and one decision with its explanation, diff and a ledger
// inclusion proof verified in this page.
import { api, query } from './api.js';
import { verifyInclusion } from './merkle.js';
import { errorText, h, json, table, when } from './views.js';

const LEVELS = ['', 'none', 'low', 'medium', 'high', 'critical'];
const FILTERS = ['threat_level', 'rule', 'entity', 'since', 'until'];

const toIso = (local) => (local ? new Date(local).toISOString() : '');

export async function decisionsView(main, params) {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) || '']));
  const page = await api(
    'GET',
    `/decisions${query({ ...filters, since: toIso(filters.since), until: toIso(filters.until), cursor: params.get('cursor'), limit: 50 })}`,
  );
  const form = h(
    'form',
    {
      class: 'filters',
      id: 'decision-filters',
      onsubmit: (e) => {
        e.preventDefault();
        const data = new FormData(e.target);
        const q = new URLSearchParams();
        for (const f of FILTERS) if (data.get(f)) q.set(f, data.get(f));
        location.hash = `#/decisions?${q}`;
      },
    },
    h(
      'label',
      {},
      'Level ',
      h(
        'select',
        { name: 'threat_level' },
        LEVELS.map((l) => h('option', { value: l, selected: l === filters.threat_level }, l || 'any')),
      ),
    ),
    h('label', {}, 'Rule ', h('input', { name: 'rule', value: filters.rule, size: 14 })),
    h('label', {}, 'IP or entity ', h('input', { name: 'entity', value: filters.entity, size: 18 })),
    h('label', {}, 'Since ', h('input', { name: 'since', type: 'datetime-local', value: filters.since })),
    h('label', {}, 'Until ', h('input', { name: 'until', type: 'datetime-local', value: filters.until })),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const next = new URLSearchParams(params);
  if (page.next_cursor) next.set('cursor', page.next_cursor);
  main.replaceChildren(
    h('h1', {}, 'Decisions'),
    form,
    table(
      [
        { label: 'Decision', cell: (d) => h('a', { href: `#/decision/${d.decision_id}` }, d.decision_id) },
        { label: 'Level', cell: (d) => h('span', { class: `level ${d.threat_level}` }, d.threat_level) },
        { label: 'Entity', cell: (d) => d.entity },
        { label: 'Rules', cell: (d) => d.rules_triggered.join(', ') },
        { label: 'Score', cell: (d) => d.score },
        { label: 'At', cell: (d) => when(d.created_at) },
      ],
      page.decisions,
      'No decision matches.',
    ),
    h(
      'p',
      { class: 'pager' },
      params.get('cursor') ? h('a', { href: '#/decisions' }, '⇤ First page') : '',
      ' ',
      page.next_cursor ? h('a', { href: `#/decisions?${next}`, id: 'next-page' }, 'Next page →') : '',
    ),
  );
}

export async function decisionView(main, id) {
  const d = await api('GET', `/decisions/${id}`);
  const proof = h('div', { class: 'card', id: 'proof' }, h('h2', {}, 'Ledger inclusion proof'), h('p', { id: 'proof-status' }, 'Verifying…'));
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/decisions' }, '← Decisions')),
    h('h1', {}, `Decision ${d.decision_id}`),
    h(
      'dl',
      { class: 'facts' },
      [
        ['Entity', d.entity],
        ['Threat level', d.threat_level],
        ['Score', d.score],
        ['Rules', d.rules_triggered.join(', ') || 'none'],
        ['Event', d.event_id ?? '—'],
        ['Ruleset / doctrine', `${d.ruleset_version} / ${d.doctrine_version}`],
        ['Ledger index', d.ledger_index],
        ['Row integrity', d.integrity.status],
        ['Decided', when(d.created_at)],
      ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]),
    ),
    h('h2', {}, 'Explanation'),
    h('p', { class: 'explanation' }, d.explanation),
    h('h2', {}, 'Mitigations'),
    json(d.mitigations),
    h('h2', {}, 'Difference from the previous decision on this entity'),
    d.decision_diff ? json(d.decision_diff) : h('p', {}, 'First decision on this entity.'),
    proof,
  );
  const out = document.getElementById('proof-status');
  try {
    const result = await verifyInclusion(
      (path) => api('GET', path),
      'decisions',
      d.ledger_index,
      (record) => {
        if (record.decision_id !== d.decision_id) throw new Error(`ledger entry ${d.ledger_index} records ${record.decision_id}, not this decision`);
      },
      (text) => (out.textContent = text),
    );
    out.className = 'verified';
    out.textContent = `✔ Verified in this page: entry ${d.ledger_index} is in the decisions log of ${result.treeSize} entries (audit path of ${result.proofLength} hashes to root ${result.root}), whose checkpoint is signed by ${result.signer}.`;
  } catch (err) {
    out.className = 'failed';
    out.textContent = `✘ Not verified: ${errorText(err)}`;
  }
}
